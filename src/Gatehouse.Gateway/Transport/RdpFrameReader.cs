using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Protocol;
using Gatehouse.Protocol.FastPath;

namespace Gatehouse.Gateway.Transport;

/// <summary>One whole RDP frame read off a connection: its bytes (header included) and its framing.</summary>
/// <param name="Bytes">The frame, copied out of the connection's buffers (the caller owns it).</param>
/// <param name="Kind">TPKT (slow path) or fast path.</param>
public readonly record struct RdpFrame(byte[] Bytes, RdpFrameKind Kind);

/// <summary>A frame that breaks the framing rules (a bad TPKT version, a length shorter than its header, a frame over the cap).</summary>
public sealed class RdpFrameException : Exception
{
    /// <summary>Creates the exception for <paramref name="error"/>.</summary>
    public RdpFrameException(PduError error, int declaredLength)
        : base(error?.ToString())
    {
        ArgumentNullException.ThrowIfNull(error);
        Error = error;
        DeclaredLength = declaredLength;
    }

    /// <summary>Creates the exception with no typed error.</summary>
    public RdpFrameException()
    {
    }

    /// <summary>Creates the exception with a message and no typed error.</summary>
    public RdpFrameException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message, an inner exception and no typed error.</summary>
    public RdpFrameException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The typed framing error.</summary>
    public PduError? Error { get; }

    /// <summary>The frame's declared length when the header was whole (for a frame over the cap), else 0.</summary>
    public int DeclaredLength { get; }

    /// <summary>True when the frame is larger than the reader's cap.</summary>
    public bool IsTooLarge => Error?.Kind == PduErrorKind.TooLarge;
}

/// <summary>
/// The gateway's one reader of RDP frames (TPKT and, when allowed, fast path), for both legs: the X.224 Connection
/// Request, the host's X.224 Connection Confirm and MCS answers, the TLS sign-in's client PDUs and the session relay.
/// Every frame is checked against a cap before anything is sized from its length (<see cref="RdpFraming.Inspect"/>),
/// and the reader never takes bytes behind the frame it returns: over a <see cref="PipeReader"/> they stay in the pipe
/// (not even marked examined, so a TLS ClientHello behind the X.224 request is seen at once); over a <see cref="Stream"/>
/// it reads exactly the bytes of the frame, so the stream can be handed to the next reader or the byte pump.
/// </summary>
public sealed class RdpFrameReader
{
    private readonly PipeReader? _pipe;
    private readonly Stream? _stream;
    private readonly bool _acceptFastPath;

    /// <summary>Reads from a pipe (bytes behind a frame stay in it for whoever reads next).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The cap is below a TPKT header or above what framing allows.</exception>
    public RdpFrameReader(PipeReader input, int maxFrameBytes, bool acceptFastPath = true)
        : this(maxFrameBytes, acceptFastPath)
    {
        ArgumentNullException.ThrowIfNull(input);
        _pipe = input;
    }

    /// <summary>Reads from a stream, exactly the bytes of each frame (nothing behind it is read).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The cap is below a TPKT header or above what framing allows.</exception>
    public RdpFrameReader(Stream input, int maxFrameBytes, bool acceptFastPath = true)
        : this(maxFrameBytes, acceptFastPath)
    {
        ArgumentNullException.ThrowIfNull(input);
        _stream = input;
    }

    private RdpFrameReader(int maxFrameBytes, bool acceptFastPath)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameBytes, Protocol.X224.TpktHeader.Size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxFrameBytes, RdpFraming.MaxFrameBytes);
        MaxFrameBytes = maxFrameBytes;
        _acceptFastPath = acceptFastPath;
    }

    /// <summary>The largest frame accepted, header included.</summary>
    public int MaxFrameBytes { get; }

    /// <summary>
    /// Reads one whole frame; null when the peer closed first (a partial frame at the end is dropped).
    /// </summary>
    /// <exception cref="RdpFrameException">The bytes break the framing rules or the cap.</exception>
    public ValueTask<RdpFrame?> ReadAsync(CancellationToken cancellationToken) =>
        _pipe is not null ? ReadFromPipeAsync(_pipe, cancellationToken) : ReadFromStreamAsync(_stream!, cancellationToken);

    private async ValueTask<RdpFrame?> ReadFromPipeAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = read.Buffer;
            var result = RdpFraming.Inspect(buffer, MaxFrameBytes, _acceptFastPath);
            switch (result.Status)
            {
                case OperationStatus.Done:
                    var frame = buffer.Slice(0, result.Length);
                    var bytes = frame.ToArray();

                    // Consumed and examined end at the frame: what follows is new data for the next read.
                    input.AdvanceTo(frame.End);
                    return new RdpFrame(bytes, result.Kind);
                case OperationStatus.InvalidData:
                    input.AdvanceTo(buffer.End);
                    throw new RdpFrameException(result.Error!, result.Length);
                default:
                    if (read.IsCompleted)
                    {
                        input.AdvanceTo(buffer.End);
                        return null;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    break;
            }
        }
    }

    private async ValueTask<RdpFrame?> ReadFromStreamAsync(Stream input, CancellationToken cancellationToken)
    {
        // Start with room for the longest header; grow once to the frame's checked length.
        var buffer = new byte[Protocol.X224.TpktHeader.Size];
        var have = 0;
        while (true)
        {
            var result = RdpFraming.Inspect(new ReadOnlySequence<byte>(buffer, 0, have), MaxFrameBytes, _acceptFastPath);
            if (result.Status == OperationStatus.Done)
            {
                return new RdpFrame(have == buffer.Length ? buffer : buffer[..have], result.Kind);
            }

            if (result.Status == OperationStatus.InvalidData)
            {
                throw new RdpFrameException(result.Error!, result.Length);
            }

            var needed = result.BytesNeeded;
            if (needed > buffer.Length)
            {
                Array.Resize(ref buffer, needed);
            }

            // Exactly up to what the frame needs: never a byte of what follows it.
            var read = await input.ReadAtLeastAsync(buffer.AsMemory(have, needed - have), needed - have, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            have += read;
            if (have < needed)
            {
                return null;
            }
        }
    }
}
