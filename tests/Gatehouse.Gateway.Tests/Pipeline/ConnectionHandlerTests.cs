using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Pipeline;

public sealed class ConnectionHandlerTests
{
    /// <summary>FreeRDP 3.10.3 /sec:aad: cookie mstshash=root, RDP_NEG_REQ requestedProtocols=0x10.</summary>
    private static readonly byte[] AadRequest = Convert.FromHexString("0300002a25e00000000000436f6f6b69653a206d737473686173683d726f6f740d0a0100080010000000");

    /// <summary>The phase deadlines of these tests, on the gateway's clock (distinct, so a test can pass one alone).</summary>
    private static readonly TimeSpan NegotiationTimeout = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan TlsHandshakeTimeout = TimeSpan.FromSeconds(7);

    private static GatewayOptions Options(Action<GatewayOptions>? change = null)
    {
        var options = new GatewayOptions
        {
            NegotiationTimeout = NegotiationTimeout,
            TlsHandshakeTimeout = TlsHandshakeTimeout,
        };
        change?.Invoke(options);
        return options;
    }

    [Fact]
    public async Task WebAccountClient_GetsRdsAadSelected_TlsAndReachesSignIn()
    {
        var authenticator = new RecordingAuthenticator(SignInMethods.WebAccount);
        await using var gateway = await GatewayHost.StartAsync(Options(), authenticator);
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        await stream.WriteAsync(AadRequest);
        var confirm = await ReadConfirmAsync(stream);
        Assert.False(confirm.Result!.Value.IsFailure);
        Assert.Equal(SecurityProtocol.RdsAad, confirm.Result.Value.SelectedProtocol);

        await using var tls = new SslStream(stream, leaveInnerStreamOpen: true, (_, certificate, _, _) => certificate?.GetCertHashString() == gateway.Certificate.GetCertHashString());
        await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
        using var reader = new StreamReader(tls);
        Assert.Equal("signed-in", await reader.ReadLineAsync().WaitAsync(Until.Backstop));
        var reached = await authenticator.Reached.WaitAsync(Until.Backstop);
        Assert.Equal(SignInMethods.WebAccount, reached.Negotiation!.Method);
        Assert.Equal("root", reached.ConnectionRequest!.TokenValue);
        Assert.Equal(IPAddress.Loopback, reached.RemoteAddress);
    }

    [Theory]
    [InlineData(SecurityProtocol.Ssl | SecurityProtocol.Hybrid, 0, NegotiationFailureCode.SslNotAllowedByServer)]
    [InlineData(SecurityProtocol.RdsAad, 0x01, NegotiationFailureCode.SslNotAllowedByServer)]
    [InlineData(SecurityProtocol.RdsAad, 0x02, NegotiationFailureCode.SslNotAllowedByServer)]
    [InlineData(SecurityProtocol.Rdp, 0, NegotiationFailureCode.SslRequiredByServer)]
    public async Task UnacceptableRequest_GetsNegotiationFailureAndIsClosed(SecurityProtocol offered, byte flags, NegotiationFailureCode code)
    {
        var authenticator = new RecordingAuthenticator(SignInMethods.WebAccount);
        await using var gateway = await GatewayHost.StartAsync(Options(), authenticator);
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        var request = AadRequest.ToArray();
        request[^4] = (byte)offered;
        request[^7] = flags;
        await stream.WriteAsync(request);
        var confirm = await ReadConfirmAsync(stream);
        Assert.True(confirm.Result!.Value.IsFailure);
        Assert.Equal(code, confirm.Result.Value.FailureCode);
        Assert.Equal(0, await stream.ReadAsync(new byte[1]).AsTask().WaitAsync(Until.Backstop));
        Assert.False(authenticator.Reached.IsCompleted);
    }

    [Fact]
    public async Task NegotiationRefusal_IsLoggedBeforeTheAnswer_AndTheEntryStaysWhenTheClientLeavesMeanwhile()
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        var hold = new Gate();
        gateway.SignInLog.Hold = hold;
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        var request = AadRequest.ToArray();
        request[^4] = (byte)SecurityProtocol.Rdp;
        await stream.WriteAsync(request);
        var confirm = ReadConfirmAsync(stream);

        // The gateway is writing the entry: the client has no answer yet. It leaves now; the entry is still written.
        await hold.Entered.WaitAsync(Until.Backstop);
        Assert.False(confirm.IsCompleted, "the client got its answer before the refusal was logged");
        client.LingerState = new LingerOption(true, 0);
        client.Dispose();
        await gateway.WaitClosedAsync(1);
        hold.Open();
        await Assert.ThrowsAnyAsync<Exception>(() => confirm);
        await gateway.WaitIdleAsync();
        var entry = Assert.Single(gateway.SignInLog.Entries);
        Assert.StartsWith("negotiation_refused:", entry.Reason, StringComparison.Ordinal);
        Assert.Equal("root", entry.UserPrincipalName);
        Assert.Equal(0, gateway.SignInLog.Lost);
    }

    [Theory]
    [InlineData("16030100")]                         // a TLS ClientHello instead of X.224
    [InlineData("0300000b07e00000000000")]           // TPKT of 11 bytes whose X.224 length indicator overruns it
    [InlineData("0400002a")]                         // TPKT version 4
    [InlineData("0300ffff")]                         // a 64 KiB TPKT: more than the negotiation cap
    public async Task MalformedNegotiation_IsClosedWithoutAnswer(string hex)
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        var bytes = Convert.FromHexString(hex);
        await stream.WriteAsync(bytes.Length < 8 && hex == "0300ffff" ? [.. bytes, .. new byte[RdpConnectionHandler.MaxNegotiationBytes + 16]] : bytes);
        Assert.Equal(0, await ReadToEndCountAsync(stream));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PreconnectionPdu_ThenConnectionRequest_IsAccepted_AndKept(bool byteByByte)
    {
        var authenticator = new RecordingAuthenticator(SignInMethods.WebAccount);
        await using var gateway = await GatewayHost.StartAsync(Options(), authenticator);
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        var pcb = new System.Buffers.ArrayBufferWriter<byte>();
        new Gatehouse.Protocol.Preconnection.PreconnectionPdu(7, "vm1-route").Write(pcb);
        byte[] bytes = [.. pcb.WrittenSpan, .. AadRequest];
        if (byteByByte)
        {
            foreach (var b in bytes)
            {
                await stream.WriteAsync(new[] { b });
                await stream.FlushAsync();
            }
        }
        else
        {
            await stream.WriteAsync(bytes);
        }

        var confirm = await ReadConfirmAsync(stream);
        Assert.Equal(SecurityProtocol.RdsAad, confirm.Result!.Value.SelectedProtocol);
        await using var tls = new SslStream(stream, leaveInnerStreamOpen: true, (_, certificate, _, _) => certificate is not null);
        await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
        var reached = await authenticator.Reached.WaitAsync(Until.Backstop);
        Assert.Equal(7u, reached.Preconnection!.Id);
        Assert.Equal("vm1-route", reached.Preconnection.Payload);
    }

    [Theory]
    [InlineData("ffff0000000000000200000007000000")] // cbSize 65535: more than the preconnection cap
    [InlineData("10000000000000000300000007000000")] // version 3
    [InlineData("0c000000")]                         // cbSize 12: shorter than a v1 PDU, then the client closes
    public async Task MalformedPreconnectionPdu_IsClosedWithoutAnswer(string hex)
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        await stream.WriteAsync(Convert.FromHexString(hex));
        client.Client.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await ReadToEndCountAsync(stream));
    }

    [Fact]
    public async Task SilentClient_IsClosedAtTheNegotiationDeadline_AndReleasesItsSlot()
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        using var client = await ConnectAsync(gateway);
        await gateway.Time.AdvanceWhenArmedAsync(NegotiationTimeout);
        Assert.Equal(0, await ReadToEndCountAsync(client.GetStream()));
        await WaitUntilAsync(() => gateway.Admission.Pending == 0);
    }

    [Fact]
    public async Task ClientThatNeverStartsTls_IsClosedAtTheTlsDeadline()
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        using var client = await ConnectAsync(gateway);
        var stream = client.GetStream();
        await stream.WriteAsync(AadRequest);
        await ReadConfirmAsync(stream);
        await gateway.Time.AdvanceWhenArmedAsync(TlsHandshakeTimeout);
        Assert.Equal(0, await ReadToEndCountAsync(stream));
    }

    [Fact]
    public async Task PerAddressCap_RefusesTheExtraConnection_AndOthersStillWork()
    {
        var authenticator = new RecordingAuthenticator(SignInMethods.WebAccount);
        await using var gateway = await GatewayHost.StartAsync(Options(o => o.MaxPendingConnectionsPerAddress = 2), authenticator);
        using var idle1 = await ConnectAsync(gateway);
        using var idle2 = await ConnectAsync(gateway);
        await WaitUntilAsync(() => gateway.Admission.Pending == 2);
        // The gateway aborts the extra connection at once; the reset can even reach the client while it connects.
        try
        {
            using var extra = await ConnectAsync(gateway);
            Assert.Equal(0, await ReadToEndCountAsync(extra.GetStream()));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }

        Assert.Equal(2, gateway.Admission.Pending);

        idle1.Dispose();
        await WaitUntilAsync(() => gateway.Admission.Pending == 1);
        using var next = await ConnectAsync(gateway);
        var stream = next.GetStream();
        await stream.WriteAsync(AadRequest);
        Assert.False((await ReadConfirmAsync(stream)).Result!.Value.IsFailure);
    }

    [Fact]
    public async Task RequestSplitAcrossWrites_IsReassembled()
    {
        await using var gateway = await GatewayHost.StartAsync(Options(), new RecordingAuthenticator(SignInMethods.WebAccount));
        using var client = await ConnectAsync(gateway);
        client.NoDelay = true;
        var stream = client.GetStream();
        foreach (var chunk in AadRequest.Chunk(5))
        {
            await stream.WriteAsync(chunk);
            await stream.FlushAsync();
            await Task.Yield();
        }

        Assert.Equal(SecurityProtocol.RdsAad, (await ReadConfirmAsync(stream)).Result!.Value.SelectedProtocol);
    }

    private static async Task<TcpClient> ConnectAsync(GatewayHost gateway)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, gateway.Port);
        return client;
    }

    private static async Task<ConnectionConfirm> ReadConfirmAsync(NetworkStream stream)
    {
        var header = new byte[4];
        await stream.ReadExactlyAsync(header).AsTask().WaitAsync(Until.Backstop);
        var frame = new byte[(header[2] << 8) | header[3]];
        header.CopyTo(frame, 0);
        await stream.ReadExactlyAsync(frame.AsMemory(4)).AsTask().WaitAsync(Until.Backstop);
        Assert.True(ConnectionConfirm.TryParse(frame, out var confirm, out var error), error?.ToString());
        return confirm;
    }

    /// <summary>Bytes received until the gateway closes (a reset counts as closed).</summary>
    private static async Task<int> ReadToEndCountAsync(NetworkStream stream)
    {
        var total = 0;
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer).AsTask().WaitAsync(Until.Backstop)) > 0)
            {
                total += n;
            }
        }
        catch (IOException)
        {
        }

        return total;
    }

    private static Task WaitUntilAsync(Func<bool> condition) => Until.TrueAsync(condition, "the condition");
}
