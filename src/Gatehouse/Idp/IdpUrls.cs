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
}
