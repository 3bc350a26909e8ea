using System.Formats.Asn1;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>Maps System.Formats.Asn1's exceptions on malformed DER to the library's typed error.</summary>
internal static class Der
{
    public static Asn1Tag Context(int tag, bool constructed = true) => new(TagClass.ContextSpecific, tag, constructed);

    public static PduError Error(string pdu, string field, Exception e) =>
        PduError.Invalid(pdu, field, e is AsnContentException or ArgumentException ? "malformed DER" : e.GetType().Name);

    /// <summary>Reads <c>[tag] EXPLICIT OCTET STRING</c>, capping its length.</summary>
    public static byte[] ReadExplicitOctets(AsnReader parent, int tag, int maxLength, string pdu, string field)
    {
        var inner = parent.ReadSequence(Context(tag));
        var value = inner.ReadOctetString();
        inner.ThrowIfNotEmpty();
        if (value.Length > maxLength)
        {
            throw new LimitException(PduError.TooLarge(pdu, field, value.Length, maxLength));
        }

        return value;
    }

    public static bool IsNext(AsnReader reader, int tag) => reader.HasData && reader.PeekTag().HasSameClassAndValue(Context(tag));

    public static void WriteExplicitOctets(AsnWriter writer, int tag, ReadOnlySpan<byte> value)
    {
        writer.PushSequence(Context(tag));
        writer.WriteOctetString(value);
        writer.PopSequence(Context(tag));
    }

    public static void WriteExplicitInteger(AsnWriter writer, int tag, long value)
    {
        writer.PushSequence(Context(tag));
        writer.WriteInteger(value);
        writer.PopSequence(Context(tag));
    }

    public static long ReadExplicitInteger(AsnReader parent, int tag)
    {
        var inner = parent.ReadSequence(Context(tag));
        if (!inner.TryReadInt64(out var value))
        {
            throw new AsnContentException("integer out of range");
        }

        inner.ThrowIfNotEmpty();
        return value;
    }
}

/// <summary>A limit hit while reading DER; carries the typed error out of the reader's call chain.</summary>
internal sealed class LimitException(PduError error) : Exception(error.ToString())
{
    public PduError Error { get; } = error;

    public LimitException()
        : this(PduError.Invalid("DER", "value", "limit"))
    {
    }

    public LimitException(string message)
        : this(PduError.Invalid("DER", "value", message))
    {
    }

    public LimitException(string message, Exception innerException)
        : this(PduError.Invalid("DER", "value", message + ": " + innerException.Message))
    {
    }
}
