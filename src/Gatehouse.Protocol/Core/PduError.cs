namespace Gatehouse.Protocol;

/// <summary>What kind of malformation a <see cref="PduError"/> describes.</summary>
public enum PduErrorKind
{
    /// <summary>The input ended before a field that the PDU's own lengths say must be there.</summary>
    NotEnoughBytes,

    /// <summary>A field has a value the specification does not allow (or that disagrees with another field).</summary>
    InvalidField,

    /// <summary>The PDU type or code is not the one expected at this point.</summary>
    UnexpectedMessageType,

    /// <summary>The value is well formed but this implementation does not support it.</summary>
    Unsupported,

    /// <summary>A length exceeds the configured or protocol size cap.</summary>
    TooLarge,
}

/// <summary>
/// The one typed error every parser in this library returns for malformed input. Parsers never throw for bad
/// input; an exception from a parser is a bug. <see cref="Pdu"/> and <see cref="Field"/> name where the problem
/// is; <see cref="Reason"/> is a lowercase fragment without trailing punctuation, so messages compose as
/// <c>"X.224 Connection Request: length: shorter than the header"</c>.
/// </summary>
/// <param name="Kind">The class of malformation.</param>
/// <param name="Pdu">The PDU (or structure) being parsed, in the specification's words.</param>
/// <param name="Field">The field at fault.</param>
/// <param name="Reason">What is wrong with it.</param>
public sealed record PduError(PduErrorKind Kind, string Pdu, string Field, string Reason)
{
    /// <inheritdoc />
    public override string ToString() => $"{Pdu}: {Field}: {Reason}";

    internal static PduError NotEnough(string pdu, string field, int needed, int available) =>
        new(PduErrorKind.NotEnoughBytes, pdu, field, $"needs {needed} bytes, {available} available");

    internal static PduError Invalid(string pdu, string field, string reason) =>
        new(PduErrorKind.InvalidField, pdu, field, reason);

    internal static PduError Unexpected(string pdu, string field, string reason) =>
        new(PduErrorKind.UnexpectedMessageType, pdu, field, reason);

    internal static PduError Unsupported(string pdu, string field, string reason) =>
        new(PduErrorKind.Unsupported, pdu, field, reason);

    internal static PduError TooLarge(string pdu, string field, long length, long limit) =>
        new(PduErrorKind.TooLarge, pdu, field, $"{length} bytes exceeds the limit of {limit}");
}
