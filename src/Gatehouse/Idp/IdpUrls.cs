namespace Gatehouse.Idp;

/// <summary>The identity provider's public URLs, built from <c>Gatehouse:PublicName</c> (what clients put in <c>/azure:ad:</c>).</summary>
internal sealed class IdpUrls(string publicName)
{
    public string PublicName { get; } = publicName;

    public string Base => $"https://{PublicName}";

    /// <summary>Entra's issuer form: <c>https://host/{tenant id}/v2.0</c>.</summary>
    public string Issuer(Guid tenantId) => $"{Base}/{tenantId:D}/v2.0";

    public string Authorize(string segment) => $"{Base}/{segment}/oauth2/v2.0/authorize";

    public string Token(string segment) => $"{Base}/{segment}/oauth2/v2.0/token";

    public string Keys(string segment) => $"{Base}/{segment}/discovery/v2.0/keys";

    public string NativeClient(string segment) => $"{Base}/{segment}/oauth2/nativeclient";

    /// <summary>The device authorization endpoint (RFC 8628 §3.1) of <c>gatehouse login</c>.</summary>
    public string DeviceCode(string segment) => $"{Base}/{segment}/oauth2/v2.0/devicecode";

    /// <summary>The token revocation endpoint (RFC 7009) of <c>gatehouse logout</c>.</summary>
    public string Revoke(string segment) => $"{Base}/{segment}/oauth2/v2.0/revoke";

    /// <summary>The page where the user enters a device sign-in's code (RFC 8628 <c>verification_uri</c>), as Entra's <c>/devicelogin</c>.</summary>
    public string DeviceLogin => $"{Base}/devicelogin";

    /// <summary>The user's own security-info page (passkeys), as Entra's <c>mysignins.microsoft.com/security-info</c>.</summary>
    public string SecurityInfo(string segment) => $"{Base}/{segment}/mysignins/security-info";
}
