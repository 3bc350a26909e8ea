using System.Text;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// The sign-in pages' posted passkey field (<c>passkey</c>): the JSON the page's script builds from Chromium's
/// <c>PublicKeyCredential</c> (credential id 32 bytes, user handle 16 bytes, P-256 DER signature), with and without the
/// user handle.
/// </summary>
public static class WebAuthnCorpus
{
    /// <summary>An assertion as Chromium's virtual authenticator answers it, with the user handle.</summary>
    public static byte[] Assertion => Encoding.UTF8.GetBytes(
        """{"id":"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA","rawId":"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA","type":"public-key","response":{"authenticatorData":"SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ","clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiQUFBQSIsIm9yaWdpbiI6Imh0dHBzOi8vbG9naW4uZ2F0ZWhvdXNlLnRlc3QifQ","signature":"MEUCIQCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kAIgEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8","userHandle":"ESIzRFVmd4iZqrvM3e7_AA"},"clientExtensionResults":{}}""");

    /// <summary>The same without a user handle (a non-discoverable credential; refused later, parsed here).</summary>
    public static byte[] WithoutUserHandle => Encoding.UTF8.GetBytes(
        """{"id":"AQID","rawId":"AQID","type":"public-key","response":{"authenticatorData":"AAAA","clientDataJSON":"e30","signature":"MAYCAQECAQE"}}""");
}
