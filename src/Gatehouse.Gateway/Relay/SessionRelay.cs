using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Gatehouse.Protocol;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Mcs;
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

    /// <summary>The largest read buffer per direction (the issue's bound: 4 MiB).</summary>
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
/// The relay after both legs are authenticated: it rewrites the PDUs that must change on the way
/// (client core <c>serverSelectedProtocol</c> = what the host selected; server core <c>clientRequestedProtocols</c> =
/// what the client asked for; the Client Info PDU gets the injected account with AUTOLOGON and no auto-reconnect
/// cookie), refuses a Server Redirection from the host, and then copies bytes both ways. Each direction reads only
/// when the other side has taken what was read before, so a slow reader slows its sender instead of filling memory.
/// </summary>
public static class SessionRelay
{
    /// <summary>Runs until either side ends; both streams are left for the caller to close.</summary>
    public static async Task<RelayOutcome> RunAsync(Stream client, Stream backend, RelaySettings settings, CancellationToken cancellationToken, RelayCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(settings);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Zero-byte reads: an idle direction waits for data without holding a 16 KiB pipe segment (and TLS read buffer).
        // Each direction holds at most one read of BufferBytes until the other side has taken it (the copy loop writes
        // before it reads again), so a slow reader stops the gateway reading from its sender.
        var bufferBytes = Math.Clamp(settings.BufferBytes, RelaySettings.MinBufferBytes, RelaySettings.MaxBufferBytes);
        var fromClient = PipeReader.Create(client, new StreamPipeReaderOptions(bufferSize: bufferBytes, minimumReadSize: Math.Min(bufferBytes, 4096), leaveOpen: true, useZeroByteReads: true));
        var fromBackend = PipeReader.Create(backend, new StreamPipeReaderOptions(bufferSize: bufferBytes, minimumReadSize: Math.Min(bufferBytes, 4096), leaveOpen: true, useZeroByteReads: true));
        counters ??= new RelayCounters();
        var upstream = ClientToBackendAsync(fromClient, backend, settings, counters, stop.Token);
        var downstream = BackendToClientAsync(fromBackend, client, settings, counters, stop.Token);
        var first = await Task.WhenAny(upstream, downstream).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        (RelayEnd End, string Reason) result;
        try
        {
            result = await first.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            result = (RelayEnd.Cancelled, "the session was ended by the gateway");
        }
        catch (InvalidDataException e)
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
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or InvalidDataException)
        {
            // The other direction stops because this one ended.
        }

        await fromClient.CompleteAsync().ConfigureAwait(false);
        await fromBackend.CompleteAsync().ConfigureAwait(false);
        return new RelayOutcome(result.End, result.Reason, counters.FromClient, counters.FromBackend);
    }

    private static async Task<(RelayEnd, string)> ClientToBackendAsync(PipeReader input, Stream output, RelaySettings settings, RelayCounters counters, CancellationToken cancellationToken)
    {
        if (settings.ClientInfoRelayed)
        {
            return await CopyAsync(input, output, counters, 0, RelayEnd.ClientClosed, "the client closed the session", cancellationToken).ConfigureAwait(false);
        }

        // 1. MCS Connect Initial: tell the host what its own leg selected.
        var connectInitial = await ReadFrameAsync(input, cancellationToken).ConfigureAwait(false);
        if (connectInitial is null)
        {
            return (RelayEnd.ClientClosed, "the client closed before its MCS Connect Initial");
        }

        PduError? error = null;
        if (connectInitial.Value.Kind != RdpFrameKind.SlowPath
            || !McsConnectPatch.TrySetServerSelectedProtocol(connectInitial.Value.Bytes.AsSpan(X224Data.FrameOverhead), settings.BackendSelectedProtocol, out error))
        {
            return (RelayEnd.ProtocolError, $"the client's first PDU is not a usable MCS Connect Initial: {error?.ToString() ?? "fast-path PDU"}");
        }

        await SendAsync(output, connectInitial.Value.Bytes, counters, 0, cancellationToken).ConfigureAwait(false);

        // 2. Until the Client Info PDU: frame by frame, so it can be rewritten.
        while (true)
        {
            var frame = await ReadFrameAsync(input, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return (RelayEnd.ClientClosed, "the client closed during the connection sequence");
            }

            var bytes = frame.Value.Bytes;
            if (frame.Value.Kind == RdpFrameKind.SlowPath && IsClientInfo(bytes))
            {
                var rewritten = new ArrayBufferWriter<byte>(bytes.Length + 1024);
                var credentials = settings.Credentials;
                if (!ClientInfoRewriter.TryRewrite(bytes, new ClientInfoCredentials(credentials.Domain, credentials.UserName, credentials.Password), rewritten, out error))
                {
                    return (RelayEnd.ProtocolError, $"the client's Client Info PDU cannot be rewritten: {error}");
                }

                try
                {
                    await SendAsync(output, rewritten.WrittenMemory, counters, 0, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    // The injected password must not linger in memory.
                    CryptographicOperations.ZeroMemory(MemoryMarshalSpan(rewritten));
                }

                break;
            }

            await SendAsync(output, bytes, counters, 0, cancellationToken).ConfigureAwait(false);
        }

        // 3. The rest of the session: bytes as they come.
        return await CopyAsync(input, output, counters, 0, RelayEnd.ClientClosed, "the client closed the session", cancellationToken).ConfigureAwait(false);
    }

    private static async Task<(RelayEnd, string)> BackendToClientAsync(PipeReader input, Stream output, RelaySettings settings, RelayCounters counters, CancellationToken cancellationToken)
    {
        // 1. MCS Connect Response: give the client back the protocols it asked for (unless the sign-in relayed it).
        if (!settings.ClientInfoRelayed)
        {
            var response = await ReadFrameAsync(input, cancellationToken).ConfigureAwait(false);
            if (response is null)
            {
                return (RelayEnd.BackendClosed, "the host closed before its MCS Connect Response");
            }

            PduError? error = null;
            if (response.Value.Kind != RdpFrameKind.SlowPath
                || !McsConnectPatch.TrySetClientRequestedProtocols(response.Value.Bytes.AsSpan(X224Data.FrameOverhead), settings.ClientRequestedProtocols, out error))
            {
                return (RelayEnd.ProtocolError, $"the host's first PDU is not a usable MCS Connect Response: {error?.ToString() ?? "fast-path PDU"}");
            }

            await SendAsync(output, response.Value.Bytes, counters, 1, cancellationToken).ConfigureAwait(false);
        }

        // 2. Until the Demand Active PDU (redirection comes before it): refuse Server Redirection.
        while (true)
        {
            var frame = await ReadFrameAsync(input, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return (RelayEnd.BackendClosed, "the host closed during the connection sequence");
            }

            var bytes = frame.Value.Bytes;
            var kind = frame.Value.Kind == RdpFrameKind.SlowPath ? Classify(bytes) : ServerPdu.Other;
            if (kind == ServerPdu.Redirection)
            {
                return (RelayEnd.RedirectionRefused, "the host sent a Server Redirection PDU; a gateway session cannot be redirected (check the host's load-balancing or connection broker)");
            }

            if (kind != ServerPdu.Other || frame.Value.Kind == RdpFrameKind.SlowPath)
            {
                await SendAsync(output, bytes, counters, 1, cancellationToken).ConfigureAwait(false);
                if (kind == ServerPdu.DemandActive)
                {
                    break;
                }

                continue;
            }

            await SendAsync(output, bytes, counters, 1, cancellationToken).ConfigureAwait(false);
            if (frame.Value.Kind == RdpFrameKind.FastPath)
            {
                break;
            }
        }

        return await CopyAsync(input, output, counters, 1, RelayEnd.BackendClosed, "the host closed the session", cancellationToken).ConfigureAwait(false);
    }

    private static bool IsClientInfo(byte[] frame)
    {
        if (!X224Data.TryUnwrapFrame(frame, out var mcs, out _) || !McsSendData.TryParseRequest(mcs, out _, out var userData, out _) || userData.Length < 4)
        {
            return false;
        }

        var flags = (BasicSecurityFlags)BinaryPrimitives.ReadUInt16LittleEndian(userData);
        return (flags & BasicSecurityFlags.InfoPkt) != 0;
    }

    private enum ServerPdu
    {
        Other,
        Redirection,
        DemandActive,
    }

    private static ServerPdu Classify(byte[] frame)
    {
        if (!X224Data.TryUnwrapFrame(frame, out var mcs, out _) || !McsSendData.TryParseIndication(mcs, out _, out var userData, out _))
        {
            return ServerPdu.Other;
        }

        if (ServerRedirection.IsRedirection(userData))
        {
            return ServerPdu.Redirection;
        }

        return ShareControlHeader.TryParse(userData, out var header, out _) && header.Type == ShareControlPduType.DemandActive
            ? ServerPdu.DemandActive
            : ServerPdu.Other;
    }

    private static Span<byte> MemoryMarshalSpan(ArrayBufferWriter<byte> buffer) =>
        System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer.WrittenMemory).Span;

    /// <summary>One whole TPKT or fast-path PDU, copied out of the pipe; null at the end of the stream.</summary>
    private static async Task<(byte[] Bytes, RdpFrameKind Kind)?> ReadFrameAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var reader = new SequenceReader<byte>(read.Buffer);
            var status = RdpFraming.TryReadFrame(ref reader, out var frame, out var kind, out var error);
            if (status == OperationStatus.Done)
            {
                var bytes = frame.ToArray();
                input.AdvanceTo(reader.Position);
                return (bytes, kind);
            }

            if (status == OperationStatus.InvalidData)
            {
                input.AdvanceTo(read.Buffer.End);
                throw new InvalidDataException(error!.ToString());
            }

            if (read.IsCompleted)
            {
                input.AdvanceTo(read.Buffer.End);
                return null;
            }

            input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static async Task<(RelayEnd, string)> CopyAsync(PipeReader input, Stream output, RelayCounters counters, int direction, RelayEnd end, string reason, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            foreach (var segment in read.Buffer)
            {
                await output.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
            }

            counters.Add(direction, read.Buffer.Length);
            if (!read.Buffer.IsEmpty)
            {
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            input.AdvanceTo(read.Buffer.End);
            if (read.IsCompleted)
            {
                return (end, reason);
            }
        }
    }

    private static async Task SendAsync(Stream output, ReadOnlyMemory<byte> bytes, RelayCounters counters, int direction, CancellationToken cancellationToken)
    {
        await output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        counters.Add(direction, bytes.Length);
    }
}
