using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Gatehouse.Gateway.Relay;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Tls;

/// <summary>What a TLS client tries: its name and password, and how far it goes.</summary>
internal sealed record TlsClientOptions
{
    public string Domain { get; init; } = string.Empty;

    public string User { get; init; } = "alice@contoso.test";

    public string Password { get; init; } = "Correct-Horse-1";

    /// <summary>The TLS server name (null: connect by IP address, no SNI).</summary>
    public string? ServerName { get; init; } = "vm1.gatehouse.test";

    /// <summary>Replaces the Client Info PDU (malformed and oversized cases).</summary>
    public byte[]? ClientInfo { get; init; }

    /// <summary>Stops after the channel join and sends nothing more (the timeout case).</summary>
    public bool StopBeforeClientInfo { get; init; }

    /// <summary>Called once the client has stopped (<see cref="StopBeforeClientInfo"/>): the test then moves the gateway's clock.</summary>
    public Action? Stopped { get; init; }

    /// <summary>Runs once the sign-in went through (the host's Demand Active came), while the connection is still open.</summary>
    public Func<Task>? WhileSignedIn { get; init; }

    /// <summary>Closes the connection right after sending the Client Info PDU, without reading anything.</summary>
    public bool LeaveAfterClientInfo { get; init; }

    /// <summary>Closing resets the connection (RST) instead of closing it (FIN).</summary>
    public bool Abort { get; init; }

    /// <summary>A routing token for the X.224 Connection Request (<c>Cookie: msts=</c>), as a client sends after a redirection.</summary>
    public string? RoutingToken { get; init; }
}

/// <summary>What came back after the Client Info PDU.</summary>
internal sealed record TlsClientOutcome(NegotiationResult? Negotiation, bool McsConnected, IReadOnlyList<byte[]> Frames, bool Closed)
{
    /// <summary>The License Error's dwErrorCode, the Set Error Info code and whether an ultimatum came (refusal frames).</summary>
    public (uint? License, ErrorInfoCode? ErrorInfo, bool Ultimatum) Refusal
    {
        get
        {
            uint? license = null;
            ErrorInfoCode? errorInfo = null;
            var ultimatum = false;
            foreach (var frame in Frames)
            {
                Assert.True(X224Data.TryUnwrapFrame(frame, out var mcs, out _));
                if (DisconnectProviderUltimatum.TryParse(mcs, out _, out _))
                {
                    ultimatum = true;
                }
                else if (McsSendData.TryParseIndication(mcs, out _, out var userData, out _))
                {
                    if (ServerRefusal.TryParseLicenseError(userData, out var code, out var transition, out _))
                    {
                        Assert.Equal(ServerRefusal.NoTransition, transition);
                        license = code;
                    }
                    else if (SetErrorInfoPdu.TryParse(userData, out var info, out _))
                    {
                        errorInfo = info.ErrorInfo;
                    }
                }
            }

            return (license, errorInfo, ultimatum);
        }
    }
}

/// <summary>
/// A TLS-security RDP client as FreeRDP 3 /sec:tls speaks it: its captured X.224 request and MCS phase
/// (testdata/captures/freerdp3-xrdp-tls), then a Client Info PDU with the given name and password, then it reads what
/// comes back until the connection closes or the host's Demand Active arrives (the sign-in went through).
/// </summary>
internal static class TlsTestClient
{
    public static byte[] Capture(string name) =>
        File.ReadAllBytes(Path.Combine(Gatehouse.Fuzz.RepoPaths.FindRoot()!, "testdata", "captures", "freerdp3-xrdp-tls", name));

    /// <summary>The captured Client Info PDU with <paramref name="domain"/>, <paramref name="user"/> and <paramref name="password"/>.</summary>
    public static byte[] ClientInfo(string domain, string user, string password)
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.True(ClientInfoRewriter.TryRewrite(Capture("c2s-010-client-info.bin"), new ClientInfoCredentials(domain, user, password), output, out var error), error?.ToString());
        return output.WrittenSpan.ToArray();
    }

    public static async Task<TlsClientOutcome> RunAsync(int port, TlsClientOptions options)
    {
        using var tcp = new TcpClient();
        if (options.Abort)
        {
            tcp.LingerState = new LingerOption(true, 0);
        }

        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        if (options.RoutingToken is { } routingToken)
        {
            var writer = new ArrayBufferWriter<byte>(128);
            new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.RoutingToken, tokenValue: routingToken, negotiation: new NegotiationRequest(0, SecurityProtocol.Ssl)).Write(writer);
            await stream.WriteAsync(writer.WrittenMemory);
        }
        else
        {
            await stream.WriteAsync(Capture("c2s-000-x224-connection-request.bin"));
        }

        var confirmFrame = await ReadFrameAsync(stream);
        Assert.NotNull(confirmFrame);
        Assert.True(ConnectionConfirm.TryParse(confirmFrame, out var confirm, out _));
        if (confirm.Result is not { IsFailure: false } result)
        {
            return new TlsClientOutcome(confirm.Result, false, [], true);
        }

        await using var tls = new SslStream(stream, false, (_, certificate, _, _) => certificate is not null);
        await tls.AuthenticateAsClientAsync(options.ServerName ?? "127.0.0.1");
        await tls.WriteAsync(Capture("c2s-001-mcs-connect-initial.bin"));
        var response = await ReadFrameAsync(tls);
        if (response is null || !McsConnectResponse.TryParseFrame(response, out var connectResponse, out _))
        {
            return new TlsClientOutcome(result, false, response is null ? [] : [response], response is null);
        }

        Assert.Equal(SecurityProtocol.Ssl, connectResponse.Core.ClientRequestedProtocols);
        await tls.WriteAsync((byte[])[.. Capture("c2s-002-mcs-erect-domain.bin"), .. Capture("c2s-003-mcs-attach-user-request.bin")]);
        Assert.NotNull(await ReadFrameAsync(tls));
        await tls.WriteAsync(Capture("c2s-004-mcs-channel-join-request.bin"));
        Assert.NotNull(await ReadFrameAsync(tls));
        if (options.StopBeforeClientInfo)
        {
            options.Stopped?.Invoke();
        }
        else
        {
            await tls.WriteAsync(options.ClientInfo ?? ClientInfo(options.Domain, options.User, options.Password));
            await tls.FlushAsync();
            if (options.LeaveAfterClientInfo)
            {
                return new TlsClientOutcome(result, true, [], false);
            }
        }

        // Until the gateway closes (a refusal ends with the ultimatum and the close) or the host's Demand Active comes
        // through (a sign-in that went through); nothing here waits on the clock.
        var demandActive = Capture("s2c-011-demand-active.bin");
        var frames = new List<byte[]>();
        var closed = false;
        while (true)
        {
            byte[]? frame;
            try
            {
                frame = await ReadFrameAsync(tls).WaitAsync(Until.Backstop);
            }
            catch (IOException)
            {
                closed = true;
                break;
            }

            if (frame is null)
            {
                closed = true;
                break;
            }

            frames.Add(frame);
            if (frame.AsSpan().SequenceEqual(demandActive))
            {
                if (options.WhileSignedIn is { } whileSignedIn)
                {
                    await whileSignedIn();
                }

                break;
            }
        }

        return new TlsClientOutcome(result, true, frames, closed);
    }

    /// <summary>One TPKT frame, or null at the end of the stream.</summary>
    public static async Task<byte[]?> ReadFrameAsync(Stream stream)
    {
        var header = new byte[4];
        try
        {
            await stream.ReadExactlyAsync(header);
            var frame = new byte[(header[2] << 8) | header[3]];
            header.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4));
            return frame;
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }
}
