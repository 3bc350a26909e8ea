using System.Text;
using System.Text.Json.Nodes;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.WebAuthn;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The passkey field the sign-in pages post (<see cref="WebAuthnAssertionForm"/>): parsed within its caps or refused
/// with a <see cref="WebAuthnFormError"/>, never thrown; what it accepts, written back as the page's script would,
/// parses to the same bytes.
/// </summary>
public static class WebAuthnTargets
{
    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("webauthn-assertion-form", [WebAuthnCorpus.Assertion, WebAuthnCorpus.WithoutUserHandle], Check);
    }

    private static void Check(ReadOnlySpan<byte> input)
    {
        var text = Encoding.UTF8.GetString(input);
        if (!WebAuthnAssertionForm.TryParse(text, out var form, out var error))
        {
            if (form is not null || !Enum.IsDefined(error))
            {
                throw new OracleViolationException("a refusal with a form, or with an undefined error");
            }

            return;
        }

        if (form is null || text.Length > WebAuthnAssertionForm.MaxLength
            || form.CredentialId.Length is 0 or > WebAuthnAssertionForm.MaxCredentialIdLength
            || form.AuthenticatorData.Length is 0 or > WebAuthnAssertionForm.MaxMemberLength
            || form.ClientDataJson.Length is 0 or > WebAuthnAssertionForm.MaxMemberLength
            || form.Signature.Length is 0 or > WebAuthnAssertionForm.MaxMemberLength
            || form.UserHandle is { Length: 0 or > WebAuthnAssertionForm.MaxUserHandleLength })
        {
            throw new OracleViolationException("an accepted form breaks a cap");
        }

        var id = B64(form.CredentialId);
        var response = new JsonObject
        {
            ["authenticatorData"] = B64(form.AuthenticatorData),
            ["clientDataJSON"] = B64(form.ClientDataJson),
            ["signature"] = B64(form.Signature),
        };
        if (form.UserHandle is not null)
        {
            response["userHandle"] = B64(form.UserHandle);
        }

        var again = new JsonObject { ["id"] = id, ["rawId"] = id, ["type"] = "public-key", ["response"] = response }.ToJsonString();
        if (!WebAuthnAssertionForm.TryParse(again, out var reparsed, out _)
            || !reparsed!.CredentialId.AsSpan().SequenceEqual(form.CredentialId)
            || !reparsed.AuthenticatorData.AsSpan().SequenceEqual(form.AuthenticatorData)
            || !reparsed.ClientDataJson.AsSpan().SequenceEqual(form.ClientDataJson)
            || !reparsed.Signature.AsSpan().SequenceEqual(form.Signature)
            || (reparsed.UserHandle is null) != (form.UserHandle is null))
        {
            throw new OracleViolationException("an accepted form, written back, does not parse to the same bytes");
        }
    }

    private static string B64(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);
}
