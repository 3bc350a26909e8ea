namespace Gatehouse.Gateway.Transport;

/// <summary>
/// The parts every duplex byte stream of a connection leg shares: readable and writable, never seekable, no length or
/// position. Its subclasses say only how they read, write and flush.
/// </summary>
internal abstract class DuplexStreamBase : Stream
{
    public sealed override bool CanRead => true;

    public sealed override bool CanSeek => false;

    public sealed override bool CanWrite => true;

    public sealed override long Length => throw new NotSupportedException();

    public sealed override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public sealed override void SetLength(long value) => throw new NotSupportedException();
}
