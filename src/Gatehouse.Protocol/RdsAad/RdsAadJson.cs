using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Gatehouse.Protocol.RdsAad;

/// <summary>
/// [MS-RDPBCGR] 2.2.18 framing of the RDS AAD Auth PDUs: UTF-8 JSON followed by one NUL byte, no length prefix. The
/// reader scans for the NUL and refuses messages over a size cap (64 KiB by default) so a client that never sends
/// the terminator cannot make the gateway buffer without bound.
/// </summary>
public static class RdsAadFraming
{
    /// <summary>The default cap on one message, terminator excluded.</summary>
    public const int DefaultMaxMessageBytes = 64 * 1024;

    private const string Pdu = "RDS AAD Auth PDU";

    /// <summary>
    /// Reads one message from a stream buffer: <see cref="OperationStatus.Done"/> with the JSON (without its NUL, which
    /// is consumed), <see cref="OperationStatus.NeedMoreData"/> (nothing consumed), or
    /// <see cref="OperationStatus.InvalidData"/> with a <see cref="PduErrorKind.TooLarge"/> error.
    /// </summary>
    public static OperationStatus TryReadMessage(ref SequenceReader<byte> reader, int maxBytes, out ReadOnlySequence<byte> json, out PduError? error)
    {
        error = null;
        var consumedBefore = reader.Consumed;
        if (reader.TryReadTo(out json, 0, advancePastDelimiter: true))
        {
            if (json.Length > maxBytes)
            {
                error = PduError.TooLarge(Pdu, "message", json.Length, maxBytes);
                reader.Rewind(reader.Consumed - consumedBefore);
                json = default;
                return OperationStatus.InvalidData;
            }

            return OperationStatus.Done;
        }

        json = default;
        if (reader.Remaining > maxBytes)
        {
            error = PduError.TooLarge(Pdu, "message", reader.Remaining, maxBytes);
            return OperationStatus.InvalidData;
        }

        return OperationStatus.NeedMoreData;
    }

    /// <summary>Splits one NUL-terminated message from the start of <paramref name="source"/>.</summary>
    public static bool TryReadMessage(ReadOnlySpan<byte> source, int maxBytes, out int consumed, out ReadOnlySpan<byte> json, out PduError? error)
    {
        var end = source.IndexOf((byte)0);
        if (end < 0)
        {
            consumed = 0;
            json = default;
            error = source.Length > maxBytes ? PduError.TooLarge(Pdu, "message", source.Length, maxBytes) : PduError.NotEnough(Pdu, "terminator", source.Length + 1, source.Length);
            return false;
        }

        if (end > maxBytes)
        {
            consumed = 0;
            json = default;
            error = PduError.TooLarge(Pdu, "message", end, maxBytes);
            return false;
        }

        consumed = end + 1;
        json = source[..end];
        error = null;
        return true;
    }
}

/// <summary>A member's token type and where its value sits in the JSON text.</summary>
internal readonly record struct JsonMember(JsonTokenType Type, int Start, int Length)
{
    public ReadOnlySpan<byte> Slice(ReadOnlySpan<byte> json) => json.Slice(Start, Length);
}

/// <summary>The members of one JSON object, by name (case-sensitive).</summary>
internal sealed class JsonMembers : Dictionary<string, JsonMember>
{
    public JsonMembers()
        : base(StringComparer.Ordinal)
    {
    }
}

/// <summary>
/// Strict reading of the small JSON objects RDS AAD Auth uses: one top-level object, no duplicate member names, no
/// trailing data, bounded depth; an optional single NUL terminator after the object is accepted (it is part of the
/// wire form). Member names compare case-sensitively, as FreeRDP 3.18 and later do.
/// </summary>
internal static class RdsAadJson
{
    public const int MaxDepth = 8;

    /// <summary>Reads the top-level members of an object: (name, the value's raw JSON, its token type).</summary>
    public static bool TryReadObject(ReadOnlySpan<byte> json, string pdu, out JsonMembers members, out PduError? error)
    {
        members = new JsonMembers();
        if (!json.IsEmpty && json[^1] == 0)
        {
            json = json[..^1];
        }

        if (json.IsEmpty)
        {
            error = PduError.NotEnough(pdu, "JSON", 2, 0);
            return false;
        }

        if (!IsValidUtf8(json))
        {
            error = PduError.Invalid(pdu, "JSON", "not valid UTF-8");
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = PduError.Invalid(pdu, "JSON", $"expected an object, found {reader.TokenType}");
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString()!;
                reader.Read();
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                var end = (int)reader.BytesConsumed;
                var type = json[start] switch
                {
                    (byte)'{' => JsonTokenType.StartObject,
                    (byte)'[' => JsonTokenType.StartArray,
                    (byte)'"' => JsonTokenType.String,
                    (byte)'t' => JsonTokenType.True,
                    (byte)'f' => JsonTokenType.False,
                    (byte)'n' => JsonTokenType.Null,
                    _ => JsonTokenType.Number,
                };
                if (!members.TryAdd(name, new JsonMember(type, start, end - start)))
                {
                    error = PduError.Invalid(pdu, name, "the member appears twice");
                    return false;
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                error = PduError.Invalid(pdu, "JSON", "data after the object");
                return false;
            }
        }
        catch (JsonException e)
        {
            error = PduError.Invalid(pdu, "JSON", $"not valid JSON ({Shorten(e.Message)})");
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>A required string member.</summary>
    public static bool TryGetString(ReadOnlySpan<byte> json, JsonMembers members, string pdu, string name, out string value, out PduError? error)
    {
        value = string.Empty;
        if (!members.TryGetValue(name, out var member))
        {
            error = PduError.Invalid(pdu, name, "required member missing");
            return false;
        }

        if (member.Type != JsonTokenType.String)
        {
            error = PduError.Invalid(pdu, name, $"expected a string, found {member.Type}");
            return false;
        }

        var reader = new Utf8JsonReader(member.Slice(json));
        reader.Read();
        value = reader.GetString()!;
        error = null;
        return true;
    }

    /// <summary>Writes <c>{"name":value}</c> plus the NUL terminator.</summary>
    public static void WriteMessage(IBufferWriter<byte> output, Action<Utf8JsonWriter> writeMembers)
    {
        using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writeMembers(writer);
            writer.WriteEndObject();
        }

        output.GetSpan(1)[0] = 0;
        output.Advance(1);
    }

    private static string Shorten(string message) => message.Length > 120 ? message[..120] : message;

    /// <summary>Decodes base64url without padding; false for padding, '+', '/', other characters, or an impossible length.</summary>
    public static bool TryDecodeBase64Url(ReadOnlySpan<char> text, out byte[] bytes)
    {
        bytes = [];
        if (!IsBase64Url(text))
        {
            return false;
        }

        bytes = new byte[System.Buffers.Text.Base64Url.GetMaxDecodedLength(text.Length)];
        var status = System.Buffers.Text.Base64Url.DecodeFromChars(text, bytes, out _, out var written);
        if (status != OperationStatus.Done)
        {
            bytes = [];
            return false;
        }

        if (written != bytes.Length)
        {
            bytes = bytes[..written];
        }

        return true;
    }

    /// <summary>True for base64url text without padding whose length can be decoded.</summary>
    public static bool IsBase64Url(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 == 1)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Encodes base64url without padding.</summary>
    public static string EncodeBase64Url(ReadOnlySpan<byte> bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    /// <summary>UTF-8 that decodes cleanly.</summary>
    public static bool IsValidUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);
}
