using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Gatehouse.Protocol;

/// <summary>
/// A bounds-checked cursor over a span. Every read either succeeds or records a <see cref="PduError"/> naming the
/// PDU and the field, so parsers read as a list of fields and never index out of range.
/// </summary>
internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _pdu;

    public WireReader(ReadOnlySpan<byte> data, string pdu)
    {
        _data = data;
        _pdu = pdu;
        Position = 0;
        Error = null;
    }

    /// <summary>Bytes consumed so far.</summary>
    public int Position { get; private set; }

    /// <summary>Bytes left.</summary>
    public readonly int Remaining => _data.Length - Position;

    /// <summary>The bytes not read yet.</summary>
    public readonly ReadOnlySpan<byte> Rest => _data[Position..];

    /// <summary>The whole input.</summary>
    public readonly ReadOnlySpan<byte> Data => _data;

    /// <summary>The first error met; once set, every further read fails.</summary>
    public PduError? Error { get; private set; }

    /// <summary>The PDU name used in errors.</summary>
    public readonly string Pdu => _pdu;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Ensure(int count, string field)
    {
        if (Error is not null)
        {
            return false;
        }

        if ((uint)count > (uint)Remaining)
        {
            Error = PduError.NotEnough(_pdu, field, count, Remaining);
            return false;
        }

        return true;
    }

    public bool Fail(PduError error)
    {
        Error ??= error;
        return false;
    }

    public bool FailInvalid(string field, string reason) => Fail(PduError.Invalid(_pdu, field, reason));

    public bool TryReadU8(string field, out byte value)
    {
        if (!Ensure(1, field))
        {
            value = 0;
            return false;
        }

        value = _data[Position];
        Position += 1;
        return true;
    }

    public bool TryReadU16LE(string field, out ushort value)
    {
        if (!Ensure(2, field))
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt16LittleEndian(_data[Position..]);
        Position += 2;
        return true;
    }

    public bool TryReadU16BE(string field, out ushort value)
    {
        if (!Ensure(2, field))
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt16BigEndian(_data[Position..]);
        Position += 2;
        return true;
    }

    public bool TryReadU32LE(string field, out uint value)
    {
        if (!Ensure(4, field))
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt32LittleEndian(_data[Position..]);
        Position += 4;
        return true;
    }

    public bool TryReadU32BE(string field, out uint value)
    {
        if (!Ensure(4, field))
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadUInt32BigEndian(_data[Position..]);
        Position += 4;
        return true;
    }

    public bool TryReadI32LE(string field, out int value)
    {
        if (!Ensure(4, field))
        {
            value = 0;
            return false;
        }

        value = BinaryPrimitives.ReadInt32LittleEndian(_data[Position..]);
        Position += 4;
        return true;
    }

    /// <summary>Reads <paramref name="count"/> bytes; a negative or too large count fails with NotEnoughBytes.</summary>
    public bool TryReadBytes(int count, string field, out ReadOnlySpan<byte> value)
    {
        if (count < 0)
        {
            value = default;
            return Fail(PduError.Invalid(_pdu, field, $"negative length {count}"));
        }

        if (!Ensure(count, field))
        {
            value = default;
            return false;
        }

        value = _data.Slice(Position, count);
        Position += count;
        return true;
    }

    public bool TrySkip(int count, string field) => TryReadBytes(count, field, out _);

    public readonly bool TryPeekU8(out byte value)
    {
        if (Error is null && Remaining >= 1)
        {
            value = _data[Position];
            return true;
        }

        value = 0;
        return false;
    }
}
