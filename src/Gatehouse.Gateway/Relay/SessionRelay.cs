using System.IO.Pipelines;
using System.Security.Cryptography;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Relay;

/// <summary>The account the gateway logs on with (never shown to the client).</summary>
public sealed record InjectedCredentials(string Domain, string UserName, string Password)
{
    /// <summary>Never prints the password.</summary>
    public override string ToString() => string.IsNullOrEmpty(Domain) ? UserName : $"{Domain}\\{UserName}";
}

/// <summary>What the relay needs to know about the two legs.</summary>
public sealed record RelaySettings
{
    /// <summary>The protocols the client asked for in its X.224 request (restored in the server core data).</summary>
    public required SecurityProtocol ClientRequestedProtocols { get; init; }

    /// <summary>The protocol the host selected on the target leg (set in the client core data).</summary>
    public required SecurityProtocol BackendSelectedProtocol { get; init; }

    /// <summary>The account injected into the Client Info PDU.</summary>
    public required InjectedCredentials Credentials { get; init; }

    /// <summary>The smallest read buffer per direction.</summary>
    public const int MinBufferBytes = 4 * 1024;

    /// <summary>The largest read buffer per direction (the bound: 4 MiB).</summary>
    public const int MaxBufferBytes = 4 * 1024 * 1024;

    /// <summary>Bytes read ahead per direction before the relay waits for the other side to take them.</summary>
    public int BufferBytes { get; init; } = 16 * 1024;

    /// <summary>
    /// True when the MCS Connect exchange and the (rewritten) Client Info PDU were relayed before the relay starts (the
    /// TLS sign-in reads the password from the Client Info PDU): the client's bytes are then copied as they come and
    /// the host's are watched for Server Redirection until the Demand Active PDU.
    /// </summary>
    public bool ClientInfoRelayed { get; init; }
}

/// <summary>Bytes relayed so far in each direction, readable while the relay runs (the live session registry shows them).</summary>
public sealed class RelayCounters
{
    private long _fromClient;
    private long _fromBackend;

    /// <summary>Bytes read from the client and sent to the host.</summary>
    public long FromClient => Interlocked.Read(ref _fromClient);

    /// <summary>Bytes read from the host and sent to the client.</summary>
    public long FromBackend => Interlocked.Read(ref _fromBackend);

    internal void Add(int direction, long bytes)
    {
        Diagnostics.GatewayTelemetry.Relayed(direction, bytes);
        if (direction == 0)
        {
            Interlocked.Add(ref _fromClient, bytes);
        }
        else
        {
            Interlocked.Add(ref _fromBackend, bytes);
        }
    }
}

/// <summary>How a relayed session ended.</summary>
public enum RelayEnd
{
    /// <summary>The client closed.</summary>
    ClientClosed,

    /// <summary>The host closed.</summary>
    BackendClosed,

    /// <summary>The host tried to redirect the client elsewhere; refused.</summary>
    RedirectionRefused,

    /// <summary>A PDU of the connection sequence was not what it must be.</summary>
    ProtocolError,

    /// <summary>The session was ended from outside (shutdown, kill, policy).</summary>
    Cancelled,
}

/// <summary>The outcome of a relayed session.</summary>
public sealed record RelayOutcome(RelayEnd End, string Reason, long BytesFromClient, long BytesFromBackend);

/// <summary>
/// The relay after both legs are authenticated: every PDU of the connection sequence goes through one
/// <see cref="ConnectionSequenceInterceptor"/>, which rewrites the PDUs that must change on the way (client core
/// <c>serverSelectedProtocol</c> = what the host selected; server core <c>clientRequestedProtocols</c> = what the client
/// asked for; the Client Info PDU gets the injected account with AUTOLOGON and no auto-reconnect cookie) and refuses a
/// Server Redirection from the host. Once it says a direction's sequence is over, that direction is a plain byte pump.
/// Frames come from one <see cref="RdpFrameReader"/> per direction over the same pipe the pump then drains, so no byte
/// is lost between the two. Each direction reads only when the other side has taken what was read before, so a slow
/// reader slows its sender instead of filling memory.
/// </summary>
public static class SessionRelay
{
    /// <summary>Runs until either side ends; both streams are left for the caller to close.</summary>
    public static async Task<RelayOutcome> RunAsync(Stream client, Stream backend, RelaySettings settings, CancellationToken cancellationToken, RelayCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(settings);
        // Both TLS legs give OpenSSL's record buffers back whenever they are idle (about 33 KiB each: Tls/TlsIdleMemory.cs).
        // Set before the relay reads or writes: the mode is a plain field of the SSL object.
        foreach (var leg in (ReadOnlySpan<Stream>)[client, backend])
        {
            if (leg is System.Net.Security.SslStream tls)
            {
                Tls.TlsIdleMemory.ReleaseBuffersWhenIdle(tls);
            }
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Zero-byte reads: an idle direction waits for data without holding a 16 KiB pipe segment (and TLS read buffer).
        // Each direction holds at most one read of BufferBytes until the other side has taken it (the copy loop writes
        // before it reads again), so a slow reader stops the gateway reading from its sender.
        var bufferBytes = Math.Clamp(settings.BufferBytes, RelaySettings.MinBufferBytes, RelaySettings.MaxBufferBytes);
        var fromClient = PipeReader.Create(client, new StreamPipeReaderOptions(bufferSize: bufferBytes, minimumReadSize: Math.Min(bufferBytes, 4096), leaveOpen: true, useZeroByteReads: true));
        var fromBackend = PipeReader.Create(backend, new StreamPipeReaderOptions(bufferSize: bufferBytes, minimumReadSize: Math.Min(bufferBytes, 4096), leaveOpen: true, useZeroByteReads: true));
        counters ??= new RelayCounters();
        var credentials = settings.Credentials;
        var sequence = new Sequence(new ConnectionSequenceInterceptor(new ConnectionSequenceOptions
        {
            ClientRequestedProtocols = settings.ClientRequestedProtocols,
            HostSelectedProtocol = settings.BackendSelectedProtocol,
            Account = new ConnectionSequenceAccount(credentials.Domain, credentials.UserName, credentials.Password),
            ClientInfoRelayed = settings.ClientInfoRelayed,
        }));
        var upstream = RelayAsync(new Direction(fromClient, client, backend, ConnectionSequenceDirection.ClientToHost, 0), sequence, counters, stop.Token);
        var downstream = RelayAsync(new Direction(fromBackend, backend, client, ConnectionSequenceDirection.HostToClient, 1), sequence, counters, stop.Token);
        var first = await Task.WhenAny(upstream, downstream).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        (RelayEnd End, string Reason) result;
        try
        {
            result = await first.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            result = (RelayEnd.Cancelled, "the session was ended by the gateway");
        }
        catch (OperationCanceledException e)
        {
            // Not the gateway's cancellation: the transport gave up (Kestrel reports a client's reset or abort as
            // ConnectionAbortedException, an OperationCanceledException), so the side that ended is the one that closed.
            result = (first == upstream ? RelayEnd.ClientClosed : RelayEnd.BackendClosed, $"the connection was aborted: {e.Message}");
        }
        catch (RdpFrameException e)
        {
            result = (RelayEnd.ProtocolError, $"a PDU could not be framed: {e.Message}");
        }
        catch (IOException e)
        {
            result = (first == upstream ? RelayEnd.ClientClosed : RelayEnd.BackendClosed, $"transport error: {e.Message}");
        }

        try
        {
            await Task.WhenAll(upstream, downstream).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The other direction stops because this one ended; however it fails, the first direction's end is the
            // session's, and the pipes below are completed either way.
        }

        await fromClient.CompleteAsync().ConfigureAwait(false);
        await fromBackend.CompleteAsync().ConfigureAwait(false);
        return new RelayOutcome(result.End, result.Reason, counters.FromClient, counters.FromBackend);
    }

    /// <summary>One direction: frames through the interceptor until its part of the sequence is over, then bytes as they come.</summary>
    private static async Task<(RelayEnd, string)> RelayAsync(Direction direction, Sequence sequence, RelayCounters counters, CancellationToken cancellationToken)
    {
        var fromClient = direction.Way == ConnectionSequenceDirection.ClientToHost;
        var reader = new RdpFrameReader(direction.Input, RdpFraming.MaxFrameBytes);
        while (!sequence.IsDone(direction.Way))
        {
            var frame = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return fromClient
                    ? (RelayEnd.ClientClosed, sequence.Interceptor.ClientPdus == 0 ? "the client closed before its MCS Connect Initial" : "the client closed during the connection sequence")
                    : (RelayEnd.BackendClosed, sequence.Interceptor.McsConnected ? "the host closed during the connection sequence" : "the host closed before its MCS Connect Response");
            }

            var verdict = sequence.Intercept(direction.Way, frame.Value);
            switch (verdict.Action)
            {
                case ConnectionSequenceAction.Forward or ConnectionSequenceAction.Rewrite:
                    try
                    {
                        await SendAsync(direction.Output, verdict.Bytes, counters, direction.Counter, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        if (verdict.HoldsSecret)
                        {
                            // The injected password must not linger in memory.
                            CryptographicOperations.ZeroMemory(verdict.Bytes);
                        }
                    }

                    break;
                case ConnectionSequenceAction.Hold:
                    // The relay always has an account to inject, so nothing is held; never forward what was not decided.
                    CryptographicOperations.ZeroMemory(verdict.Bytes);
                    return (RelayEnd.ProtocolError, "the connection sequence held a PDU the relay cannot decide");
                default:
                    return ConnectionSequenceReasons.ForRelay(verdict);
            }
        }

        return await CopyAsync(direction.Input, direction.Source, direction.Output, counters, direction.Counter, fromClient ? RelayEnd.ClientClosed : RelayEnd.BackendClosed, fromClient ? "the client closed the session" : "the host closed the session", cancellationToken).ConfigureAwait(false);
    }

    private static async Task<(RelayEnd, string)> CopyAsync(PipeReader input, Stream source, Stream output, RelayCounters counters, int direction, RelayEnd end, string reason, CancellationToken cancellationToken)
    {
        // What the frame reader read ahead of the last frame of the sequence is still in the pipe: send it first. The
        // pipe reads from the stream only when asked, so once it is drained the stream can be read directly.
        while (input.TryRead(out var buffered))
        {
            var empty = buffered.Buffer.IsEmpty;
            foreach (var segment in buffered.Buffer)
            {
                await output.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
            }

            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            counters.Add(direction, buffered.Buffer.Length);
            input.AdvanceTo(buffered.Buffer.End);
            if (buffered.IsCompleted)
            {
                return (end, reason);
            }

            if (empty)
            {
                break;
            }
        }

        await RelayPump.CopyAsync(source, output, bytes => counters.Add(direction, bytes), cancellationToken).ConfigureAwait(false);
        return (end, reason);
    }

    private static async Task SendAsync(Stream output, ReadOnlyMemory<byte> bytes, RelayCounters counters, int direction, CancellationToken cancellationToken)
    {
        await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        counters.Add(direction, bytes.Length);
    }

    /// <summary>A direction of the relay: where its bytes come from and go, and which counter they add to.</summary>
    private sealed record Direction(PipeReader Input, Stream Source, Stream Output, ConnectionSequenceDirection Way, int Counter);

    /// <summary>The interceptor, shared by the two directions (one PDU at a time).</summary>
    private sealed class Sequence(ConnectionSequenceInterceptor interceptor)
    {
        private readonly Lock _gate = new();

        public ConnectionSequenceInterceptor Interceptor { get; } = interceptor;

        public bool IsDone(ConnectionSequenceDirection way)
        {
            lock (_gate)
            {
                return way == ConnectionSequenceDirection.ClientToHost ? Interceptor.ClientDone : Interceptor.HostDone;
            }
        }

        public ConnectionSequenceVerdict Intercept(ConnectionSequenceDirection way, RdpFrame frame)
        {
            lock (_gate)
            {
                return Interceptor.Intercept(way, frame.Bytes, frame.Kind);
            }
        }
    }
}
