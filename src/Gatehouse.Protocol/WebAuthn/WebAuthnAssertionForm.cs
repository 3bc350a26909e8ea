using System.Buffers.Text;
using System.Text.Json;

namespace Gatehouse.Protocol.WebAuthn;

/// <summary>Why the browser's posted WebAuthn assertion was refused before any verification.</summary>
public enum WebAuthnFormError
{
    /// <summary>The field is empty.</summary>
    Empty,

    /// <summary>The field is longer than <see cref="WebAuthnAssertionForm.MaxLength"/>.</summary>
    TooLong,

    /// <summary>Not a JSON object, or JSON nested deeper than the form allows.</summary>
    NotJson,

    /// <summary>A required member (<c>id</c>, <c>rawId</c>, <c>type</c>, <c>response</c> and its three members) is missing or not a string.</summary>
    MissingMember,

    /// <summary><c>type</c> is not <c>public-key</c>.</summary>
    WrongType,

    /// <summary>A binary member is not unpadded base64url (padding and white space are refused), or decodes to more bytes than its cap.</summary>
    BadEncoding,

    /// <summary><c>id</c> and <c>rawId</c> differ.</summary>
    IdMismatch,
}

/// <summary>
/// The browser's answer to <c>navigator.credentials.get</c> as the sign-in pages' script posts it: the
/// <c>PublicKeyCredential</c> JSON with every binary member base64url-encoded (the shape of WebAuthn Level 3's
/// <c>toJSON()</c>). <see cref="TryParse"/> checks its shape and caps before the response goes to the FIDO2 library.
/// </summary>
/// <param name="CredentialId">The credential id (<c>rawId</c>).</param>
/// <param name="AuthenticatorData">The authenticator data (RP ID hash, flags, counter).</param>
/// <param name="ClientDataJson">The client data JSON bytes (type, challenge, origin).</param>
/// <param name="Signature">The assertion signature.</param>
/// <param name="UserHandle">The user handle a discoverable credential returns, or null.</param>
public sealed record WebAuthnAssertionForm(byte[] CredentialId, byte[] AuthenticatorData, byte[] ClientDataJson, byte[] Signature, byte[]? UserHandle)
{
    /// <summary>Longest field accepted, in characters (real responses are below 2 KiB).</summary>
    public const int MaxLength = 16 * 1024;

    /// <summary>Longest credential id (WebAuthn: 1023 bytes).</summary>
    public const int MaxCredentialIdLength = 1023;

    /// <summary>Longest user handle (WebAuthn: 64 bytes).</summary>
    public const int MaxUserHandleLength = 64;

    /// <summary>Longest authenticator data, client data or signature accepted.</summary>
    public const int MaxMemberLength = 4096;

    private const int MaxDepth = 8;

    /// <summary>Reads <paramref name="field"/>; never throws on any input.</summary>
    /// <returns>True with <paramref name="form"/>; false with <paramref name="error"/>.</returns>
    public static bool TryParse(string? field, out WebAuthnAssertionForm? form, out WebAuthnFormError error)
    {
        form = null;
        if (string.IsNullOrEmpty(field))
        {
            error = WebAuthnFormError.Empty;
            return false;
        }

        if (field.Length > MaxLength)
        {
            error = WebAuthnFormError.TooLong;
            return false;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(field, new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException)
        {
            error = WebAuthnFormError.NotJson;
            return false;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                error = WebAuthnFormError.NotJson;
                return false;
            }

            if (!TryString(root, "id", out var id) || !TryString(root, "rawId", out var rawId) || !TryString(root, "type", out var type)
                || !root.TryGetProperty("response", out var response) || response.ValueKind != JsonValueKind.Object
                || !TryString(response, "authenticatorData", out var authData) || !TryString(response, "clientDataJSON", out var clientData)
                || !TryString(response, "signature", out var signature))
            {
                error = WebAuthnFormError.MissingMember;
                return false;
            }

            if (type != "public-key")
            {
                error = WebAuthnFormError.WrongType;
                return false;
            }

            if (!string.Equals(id, rawId, StringComparison.Ordinal))
            {
                error = WebAuthnFormError.IdMismatch;
                return false;
            }

            byte[]? userHandle = null;
            if (response.TryGetProperty("userHandle", out var handle) && handle.ValueKind != JsonValueKind.Null
                && (handle.ValueKind != JsonValueKind.String || !TryDecode(handle.GetString(), MaxUserHandleLength, out userHandle)))
            {
                error = WebAuthnFormError.BadEncoding;
                return false;
            }

            if (!TryDecode(rawId, MaxCredentialIdLength, out var credentialId) || !TryDecode(authData, MaxMemberLength, out var authenticatorData)
                || !TryDecode(clientData, MaxMemberLength, out var clientDataJson) || !TryDecode(signature, MaxMemberLength, out var signatureBytes))
            {
                error = WebAuthnFormError.BadEncoding;
                return false;
            }

            form = new WebAuthnAssertionForm(credentialId, authenticatorData, clientDataJson, signatureBytes, userHandle);
            error = default;
            return true;
        }
    }

    private static bool TryString(JsonElement parent, string name, out string value)
    {
        value = string.Empty;
        if (!parent.TryGetProperty(name, out var element) || element.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        value = element.GetString() ?? string.Empty;
        return true;
    }

    /// <summary>Unpadded base64url (only its alphabet: no padding, no white space) of 1 to <paramref name="maxBytes"/> bytes.</summary>
    private static bool TryDecode(string? text, int maxBytes, out byte[] bytes)
    {
        bytes = [];
        if (string.IsNullOrEmpty(text) || text.Length % 4 == 1 || (long)text.Length * 3 / 4 > maxBytes)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
            {
                return false;
            }
        }

        // The non-throwing decoder: a last character with non-zero unused bits is "invalid data", not an exception.
        var buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (Base64Url.DecodeFromChars(text.AsSpan(), buffer, out _, out var written) != System.Buffers.OperationStatus.Done || written == 0)
        {
            return false;
        }

        bytes = written == buffer.Length ? buffer : buffer[..written];
        return true;
    }
}
