using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.WebAuthn;

namespace Gatehouse.Protocol.Tests.WebAuthn;

public sealed class WebAuthnAssertionFormTests
{
    private static string Seed => Encoding.UTF8.GetString(WebAuthnCorpus.Assertion);

    [Fact]
    public void BrowserAssertion_Parses()
    {
        Assert.True(WebAuthnAssertionForm.TryParse(Seed, out var form, out _));
        Assert.Equal(32, form!.CredentialId.Length);
        Assert.Equal(37, form.AuthenticatorData.Length);
        Assert.Equal(16, form.UserHandle!.Length);
        Assert.StartsWith("{\"type\":\"webauthn.get\"", Encoding.UTF8.GetString(form.ClientDataJson), StringComparison.Ordinal);
        Assert.Equal(0x30, form.Signature[0]);
    }

    [Fact]
    public void WithoutUserHandle_OrWithANullOne_Parses()
    {
        Assert.True(WebAuthnAssertionForm.TryParse(Encoding.UTF8.GetString(WebAuthnCorpus.WithoutUserHandle), out var form, out _));
        Assert.Null(form!.UserHandle);
        Assert.True(WebAuthnAssertionForm.TryParse(Seed.Replace("\"ESIzRFVmd4iZqrvM3e7_AA\"", "null", StringComparison.Ordinal), out form, out _));
        Assert.Null(form!.UserHandle);
    }

    public static TheoryData<string?, WebAuthnFormError> Refused()
    {
        var seed = Seed;
        return new()
        {
            { null, WebAuthnFormError.Empty },
            { string.Empty, WebAuthnFormError.Empty },
            { new string(' ', WebAuthnAssertionForm.MaxLength + 1), WebAuthnFormError.TooLong },
            { "not json", WebAuthnFormError.NotJson },
            { "[1,2]", WebAuthnFormError.NotJson },
            { new string('[', 20) + new string(']', 20), WebAuthnFormError.NotJson },
            { "{}", WebAuthnFormError.MissingMember },
            { seed.Replace("\"type\":\"public-key\"", "\"type\":1", StringComparison.Ordinal), WebAuthnFormError.MissingMember },
            { seed.Replace("\"signature\"", "\"sig\"", StringComparison.Ordinal), WebAuthnFormError.MissingMember },
            { seed.Replace("\"response\":{", "\"response\":[{", StringComparison.Ordinal).Replace("},\"clientExtensionResults\"", "}],\"clientExtensionResults\"", StringComparison.Ordinal), WebAuthnFormError.MissingMember },
            { seed.Replace("public-key", "password", StringComparison.Ordinal), WebAuthnFormError.WrongType },
            { seed.Replace("\"id\":\"q83v", "\"id\":\"A83v", StringComparison.Ordinal), WebAuthnFormError.IdMismatch },
            { seed.Replace("ESIzRFVmd4iZqrvM3e7_AA", "ESIzRFVmd4iZqrvM3e7_AA==", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("\"ESIzRFVmd4iZqrvM3e7_AA\"", "7", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("\"ESIzRFVmd4iZqrvM3e7_AA\"", "\"" + new string('A', 88) + "\"", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("SZYN5YgO", "SZYN 5YgO", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("\"signature\":\"MEUC", "\"signature\":\"M+UC", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("\"clientDataJSON\":\"eyJ0", "\"clientDataJSON\":\"e.J0", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("MEUCIQCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kAIgEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8", "MAYCAQECAQJ", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("\"authenticatorData\":\"SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ\"", "\"authenticatorData\":\"\"", StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
            { seed.Replace("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA", new string('A', 1368), StringComparison.Ordinal), WebAuthnFormError.BadEncoding },
        };
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void HostileFields_AreRefusedWithTheirError(string? field, WebAuthnFormError expected)
    {
        Assert.False(WebAuthnAssertionForm.TryParse(field, out var form, out var error));
        Assert.Null(form);
        Assert.Equal(expected, error);
    }
}
