using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Gateway.Relay;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.Relay;

/// <summary>The relay's rewrites on the PDUs of a real FreeRDP 3 to xrdp session (testdata/captures).</summary>
public sealed class SessionRelayTests
{
    private static readonly string[] ClientFrames =
    [
        "c2s-001-mcs-connect-initial.bin", "c2s-002-mcs-erect-domain.bin", "c2s-003-mcs-attach-user-request.bin",
        "c2s-004-mcs-channel-join-request.bin", "c2s-010-client-info.bin", "c2s-017-fastpath-input.bin", "c2s-021-share-data.bin",
    ];

    private static readonly string[] ServerFrames =
    [
        "s2c-001-mcs-connect-response.bin", "s2c-002-mcs-attach-user-confirm.bin", "s2c-003-mcs-channel-join-confirm.bin",
        "s2c-010-license-error.bin", "s2c-011-demand-active.bin", "s2c-016-fastpath-update.bin", "s2c-017-share-data.bin",
    ];

    private static readonly RelaySettings Settings = new()
    {
        ClientRequestedProtocols = SecurityProtocol.RdsAad,
        BackendSelectedProtocol = SecurityProtocol.Hybrid,
        Credentials = new InjectedCredentials("VM1", "gh-user", "Sw0rdfish!2026"),
    };

    [Fact]
    public async Task CapturedSession_IsRewrittenWhereItMustBe_AndCopiedElsewhere()
    {
        var (client, backend, outcome) = await RunAsync(Frames(ClientFrames), Frames(ServerFrames));
        Assert.Contains(outcome.End, new[] { RelayEnd.ClientClosed, RelayEnd.BackendClosed });

        // To the host: Connect Initial with serverSelectedProtocol = what the host selected.
        var toBackend = backend.Written;
        var ci = Capture("c2s-001-mcs-connect-initial.bin");
        Assert.True(McsConnectInitial.TryParseFrame(toBackend.AsSpan(0, ci.Length), out var initial, out var error), error?.ToString());
        Assert.Equal(SecurityProtocol.Hybrid, initial.Core.ServerSelectedProtocol);

        // Then the domain PDUs unchanged, then the Client Info with the injected account.
        var offset = ci.Length;
        foreach (var name in ClientFrames[1..4])
        {
            var frame = Capture(name);
            Assert.Equal(frame, toBackend.AsSpan(offset, frame.Length).ToArray());
            offset += frame.Length;
        }

        var infoLength = (toBackend[offset + 2] << 8) | toBackend[offset + 3];
        Assert.True(ClientInfoPdu.TryParse(toBackend.AsSpan(offset, infoLength), out var info, out error), error?.ToString());
        Assert.Equal("gh-user", info.Packet.UserName);
        Assert.Equal("VM1", info.Packet.Domain);
        Assert.Equal("Sw0rdfish!2026", info.Packet.Password);
        Assert.True(info.Packet.Flags.HasFlag(ClientInfoFlags.AutoLogon));
        offset += infoLength;
        Assert.Equal([.. Capture("c2s-017-fastpath-input.bin"), .. Capture("c2s-021-share-data.bin")], toBackend[offset..]);

        // To the client: Connect Response with clientRequestedProtocols = what the client asked for; the rest as sent.
        var toClient = client.Written;
        var cr = Capture("s2c-001-mcs-connect-response.bin");
        Assert.True(McsConnectResponse.TryParseFrame(toClient.AsSpan(0, cr.Length), out var response, out error), error?.ToString());
        Assert.Equal(SecurityProtocol.RdsAad, response.Core.ClientRequestedProtocols);
        Assert.Equal(Frames(ServerFrames[1..]), toClient[cr.Length..]);
        Assert.Equal(toBackend.Length, outcome.BytesFromClient);
        Assert.Equal(toClient.Length, outcome.BytesFromBackend);
    }

    [Fact]
    public async Task ServerRedirection_BeforeDemandActive_IsRefusedAndNotForwarded()
    {
        var redirection = IndicationFrame(ClientInfoCorpus.EnhancedRedirection);
        byte[] server = [.. Frames(ServerFrames[..4]), .. redirection, .. Frames(ServerFrames[4..])];
        var (client, _, outcome) = await RunAsync(Frames(ClientFrames), server);
        Assert.Equal(RelayEnd.RedirectionRefused, outcome.End);
        Assert.Contains("Server Redirection", outcome.Reason, StringComparison.Ordinal);
        Assert.Equal(-1, client.Written.AsSpan().IndexOf(redirection));
    }

    [Fact]
    public async Task ClientStartingWithFastPath_IsAProtocolError()
    {
        var (_, backend, outcome) = await RunAsync(Capture("c2s-017-fastpath-input.bin"), Frames(ServerFrames));
        Assert.Equal(RelayEnd.ProtocolError, outcome.End);
        Assert.Empty(backend.Written);
    }

    [Fact]
    public async Task Garbage_IsAProtocolError()
    {
        var (_, _, outcome) = await RunAsync([0x05, 0x06, 0x07], Frames(ServerFrames));
        Assert.Equal(RelayEnd.ProtocolError, outcome.End);
    }

    [Fact]
    public async Task HostStartingWithFastPath_IsAProtocolError_AndNothingReachesTheClient()
    {
        var (client, _, outcome) = await RunAsync(Frames(ClientFrames), Capture("s2c-016-fastpath-update.bin"));
        Assert.Equal(RelayEnd.ProtocolError, outcome.End);
        Assert.Equal("the host's first PDU is not a usable MCS Connect Response: fast-path PDU", outcome.Reason);
        Assert.Empty(client.Written);
    }

    [Fact]
    public async Task AfterTheTlsSignIn_ARedirectionIsStillRefused()
    {
        // The TLS sign-in relayed the MCS phase and the Client Info PDU itself: no Connect Response comes first.
        var redirection = IndicationFrame(ClientInfoCorpus.EnhancedRedirection);
        byte[] client = [.. Capture("c2s-017-fastpath-input.bin"), .. Capture("c2s-021-share-data.bin")];
        var (toClient, _, outcome) = await RunAsync(client, [.. Capture("s2c-010-license-error.bin"), .. redirection], Settings with { ClientInfoRelayed = true });
        Assert.Equal(RelayEnd.RedirectionRefused, outcome.End);
        Assert.Equal(Capture("s2c-010-license-error.bin"), toClient.Written);
    }

    [Fact]
    public async Task ClientTransportAborted_IsTheClientClosing_NotTheGatewayEndingIt()
    {
        // Kestrel reports a client's reset as ConnectionAbortedException, an OperationCanceledException: the gateway
        // cancelled nothing, so the session's end is the client's.
        using var client = new AbortedStream();
        using var backend = new IdleStream();
        var outcome = await SessionRelay.RunAsync(client, backend, Settings, CancellationToken.None).WaitAsync(Until.Backstop);

        Assert.Equal(RelayEnd.ClientClosed, outcome.End);
        Assert.StartsWith("the connection was aborted", outcome.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GatewayCancellation_IsTheGatewayEndingIt()
    {
        using var client = new IdleStream();
        using var backend = new IdleStream();
        using var kill = new CancellationTokenSource();
        var running = SessionRelay.RunAsync(client, backend, Settings, kill.Token);
        await kill.CancelAsync();
        var outcome = await running.WaitAsync(Until.Backstop);

        Assert.Equal(RelayEnd.Cancelled, outcome.End);
    }

    [Fact]
    public async Task BothTlsLegs_GiveTheirRecordBuffersBackWhileIdle()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        // The gateway's ends: the client leg is a TLS server end, the host leg a TLS client end.
        await using var clientLeg = await Tls.TlsPair.CreateAsync();
        await using var hostLeg = await Tls.TlsPair.CreateAsync();
        Assert.False(Gateway.Tls.TlsIdleMemory.ReleasesBuffersWhenIdle(clientLeg.Server));
        Assert.False(Gateway.Tls.TlsIdleMemory.ReleasesBuffersWhenIdle(hostLeg.Client));

        using var kill = new CancellationTokenSource();
        var running = SessionRelay.RunAsync(clientLeg.Server, hostLeg.Client, Settings, kill.Token);
        Assert.True(Gateway.Tls.TlsIdleMemory.ReleasesBuffersWhenIdle(clientLeg.Server));
        Assert.True(Gateway.Tls.TlsIdleMemory.ReleasesBuffersWhenIdle(hostLeg.Client));

        // And the relay still works over them: the client's MCS Connect Initial reaches the host.
        var connectInitial = Capture(ClientFrames[0]);
        await clientLeg.Client.WriteAsync(connectInitial);
        var got = new byte[connectInitial.Length];
        await hostLeg.Server.ReadExactlyAsync(got).AsTask().WaitAsync(Until.Backstop);
        Assert.Equal(connectInitial.Length, got.Length);

        await kill.CancelAsync();
        Assert.Equal(RelayEnd.Cancelled, (await running.WaitAsync(Until.Backstop)).End);
    }

    private static async Task<(ScriptedStream Client, ScriptedStream Backend, RelayOutcome Outcome)> RunAsync(byte[] clientScript, byte[] backendScript, RelaySettings? settings = null)
    {
        // Each side's end of stream waits until the other side's script was read, so both directions finish their work.
        var backendDrained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var clientDrained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var backend = new ScriptedStream(backendScript, holdAtEnd: clientDrained.Task, backendDrained);
        var client = new ScriptedStream(clientScript, holdAtEnd: backendDrained.Task, clientDrained);
        var outcome = await SessionRelay.RunAsync(client, backend, settings ?? Settings, CancellationToken.None).WaitAsync(Until.Backstop);
        return (client, backend, outcome);
    }

    private static byte[] IndicationFrame(byte[] userData)
    {
        var mcs = McsSendData.Create(DomainMcsPduType.SendDataIndication, 1002, 1003, userData.Length);
        var body = new ArrayBufferWriter<byte>();
        mcs.Write(body, userData);
        var frame = new byte[X224Data.FrameOverhead + body.WrittenCount];
        X224Data.WriteFrameHeader(frame, frame.Length);
        body.WrittenSpan.CopyTo(frame.AsSpan(X224Data.FrameOverhead));
        return frame;
    }

    private static byte[] Frames(string[] names) => [.. names.SelectMany(Capture)];

    private static byte[] Capture(string name) =>
        File.ReadAllBytes(Path.Combine(Gatehouse.Fuzz.RepoPaths.FindRoot()!, "testdata", "captures", "freerdp3-xrdp-tls", name));

    /// <summary>Reads from a script and records what is written; optionally holds the end of the script until a signal.</summary>
    /// <summary>A transport that gave up: every read ends in an OperationCanceledException nobody asked for.</summary>
    private sealed class AbortedStream : IdleStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException<int>(new OperationCanceledException("The connection was aborted by the application."));
    }

    /// <summary>A side that sends nothing until it is cancelled.</summary>
    private class IdleStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
        }
    }

    private sealed class ScriptedStream(byte[] script, Task holdAtEnd, TaskCompletionSource drained) : Stream
    {
        private readonly MemoryStream _written = new();
        private int _position;

        public byte[] Written
        {
            get
            {
                lock (_written)
                {
                    return _written.ToArray();
                }
            }
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position >= script.Length)
            {
                // The relay asks for more only after it has forwarded everything it read: once both sides are drained,
                // both directions are done, and the end of stream cuts nothing short (no waiting on the clock).
                drained.TrySetResult();
                await holdAtEnd.WaitAsync(cancellationToken);
                return 0;
            }

            // Deliver in small pieces, so the relay's framing sees PDUs split across reads.
            var count = Math.Min(Math.Min(buffer.Length, 37), script.Length - _position);
            script.AsMemory(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (_written)
            {
                _written.Write(buffer.Span);
            }

            return ValueTask.CompletedTask;
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
