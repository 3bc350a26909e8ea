using System.Buffers.Binary;

namespace Gatehouse.Protocol;

/// <summary>
/// A forward-only writer over a span of exactly the size a PDU computed for itself. Writing past the end is a bug
/// in the PDU's size computation, and throws.
/// </summary>
internal ref struct WireWriter(Span<byte> destination)
{
    private readonly Span<byte> _destination = destination;

    public int Position { get; private set; }

    public readonly Span<byte> Written => _destination[..Position];

    public void WriteU8(byte value)
    {
        _destination[Position] = value;
        Position += 1;
    }

    public void WriteU16LE(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_destination[Position..], value);
        Position += 2;
    }

    public void WriteU16BE(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_destination[Position..], value);
        Position += 2;
    }

    public void WriteU32LE(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_destination[Position..], value);
        Position += 4;
    }

    public void WriteU32BE(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_destination[Position..], value);
        Position += 4;
    }

    public void WriteI32LE(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_destination[Position..], value);
        Position += 4;
    }

    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        value.CopyTo(_destination[Position..]);
        Position += value.Length;
    }

    public void WriteZeros(int count)
    {
        _destination.Slice(Position, count).Clear();
        Position += count;
    }
}
