using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.DataProtection;

namespace Gatehouse.Idp;

/// <summary>Where a sign-in stands; each form post moves it forward by one step.</summary>
internal enum SignInStep
{
    Username,
    Password,
    ChangePassword,
    Otp,
    EnrollTotp,
    Consent,

    /// <summary>The second factor with a passkey, offered before the authenticator app (<see cref="SignInTransaction.MfaFallback"/>).</summary>
    PasskeyMfa,

    /// <summary>The signed-in user's security info (passkeys: list, add, rename, remove); only for <see cref="SignInTransaction.SecurityInfo"/> sign-ins.</summary>
    SecurityInfo,
}

/// <summary>
/// The state of one sign-in between pages: the validated authorize request and what the user has proved so far.
/// It travels in a hidden form field, encrypted and authenticated with ASP.NET Data Protection (time-limited, so
/// every node sharing the key ring can continue it), and it is bound to the browser that started it through the
/// SHA-256 of a random <c>__Host-</c> cookie, so a transaction stolen from one browser is useless in another.
/// </summary>
internal sealed record SignInTransaction
{
    public required string TenantSegment { get; init; }

    public required Guid TenantId { get; init; }

    public required string ClientId { get; init; }

    public required string RedirectUri { get; init; }

    public required string Scope { get; init; }

    public string? State { get; init; }

    public string? CodeChallenge { get; init; }

    public string? CodeChallengeMethod { get; init; }

    public required Guid HostId { get; init; }

    public required string HostName { get; init; }

    public required SignInStep Step { get; init; }

    public string? Username { get; init; }

    public Guid? UserId { get; init; }

    public IReadOnlyList<string> Amr { get; init; } = [];

    public DateTimeOffset? AuthTime { get; init; }

    /// <summary>
    /// The authenticator-app secret being set up (step <see cref="SignInStep.EnrollTotp"/>): chosen once per transaction so
    /// it stays the same across wrong codes, and stored for the user only when a code made from it is accepted. It is
    /// sealed with the rest of the transaction; the page shows it (QR code and Base32) only to the browser that passed
    /// the password step.
    /// </summary>
    public byte[]? TotpEnrollmentSecret { get; init; }

    /// <summary>
    /// The WebAuthn assertion options (challenge, RP ID) the page showing this transaction handed to the browser, made
    /// afresh for every rendering of a step that offers a passkey; sealed with the transaction, so the challenge the
    /// response must answer is the one this browser was given.
    /// </summary>
    public string? PasskeyOptions { get; init; }

    /// <summary>When <see cref="PasskeyOptions"/> stop being accepted.</summary>
    public DateTimeOffset? PasskeyExpiresAt { get; init; }

    /// <summary>At <see cref="SignInStep.PasskeyMfa"/>: the step "Use your authenticator app instead" goes to (the code, or setting up the app).</summary>
    public SignInStep? MfaFallback { get; init; }

    /// <summary>
    /// True for a sign-in to the security-info page (<c>/{tenant}/mysignins/security-info</c>): it ends on that page,
    /// never with a code or an approved device code, whatever it proved.
    /// </summary>
    public bool SecurityInfo { get; init; }

    /// <summary>At <see cref="SignInStep.SecurityInfo"/>: the passkey registration options the page handed to the browser (only when adding is allowed).</summary>
    public string? RegistrationOptions { get; init; }

    /// <summary>When <see cref="RegistrationOptions"/> stop being accepted.</summary>
    public DateTimeOffset? RegistrationExpiresAt { get; init; }

    /// <summary>What the security-info page says the last action did ("Passkey 'Laptop' added.").</summary>
    public string? Notice { get; init; }

    public required string BrowserBinding { get; init; }

    /// <summary>
    /// For a device sign-in (<c>/devicelogin</c>, <c>gatehouse login</c>): the SHA-256 of the device code the user is
    /// approving; null for an authorize sign-in. A <c>gatehouse login</c> sign-in has no host (<see cref="HostId"/> is empty);
    /// an RDP one (<see cref="IsRdpDevice"/>) has the host its scope names, or none for the any-host scope.
    /// </summary>
    public string? DeviceCodeHash { get; init; }

    /// <summary>True for a device sign-in.</summary>
    [JsonIgnore]
    public bool IsDevice => DeviceCodeHash is not null;

    /// <summary>
    /// True for a device sign-in of the RDP client (the hold screen's QR sign-in): a sign-in to the host its scope names
    /// (<see cref="HostId"/>), or to Remote Desktop with no host yet (<see cref="Gatehouse.Identity.RdpScope.AnyHostScope"/>).
    /// </summary>
    [JsonIgnore]
    public bool IsRdpDevice => IsDevice && Gatehouse.Identity.RdpClient.Is(ClientId);

    /// <summary>
    /// The W3C <c>traceparent</c> of the span of the sign-in's first page (null when nothing was traced): every later page
    /// of the sign-in is a span in that trace, on whichever node serves it (the transaction travels with the browser).
    /// </summary>
    public string? TraceParent { get; init; }

    /// <summary>True for a sign-in of the web portal (<see cref="Gatehouse.Identity.GatehousePortalClient"/>): no host, no consent.</summary>
    [JsonIgnore]
    public bool IsPortal => !IsDevice && Gatehouse.Identity.GatehousePortalClient.Is(ClientId);

    /// <summary>Random per transaction, so two transactions never encrypt to related ciphertexts.</summary>
    public string Id { get; init; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
}

/// <summary>Protects and unprotects <see cref="SignInTransaction"/>s; refuses tampered, expired or foreign ones.</summary>
internal sealed class SignInTransactionProtector
{
    public const string FormField = "tx";
    public const string BrowserCookie = "__Host-gatehouse-signin";

    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };
    private readonly ITimeLimitedDataProtector _protector;
    private readonly TimeSpan _lifetime;

    public SignInTransactionProtector(IDataProtectionProvider provider, TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(provider);
        _protector = provider.CreateProtector("Gatehouse.Idp.SignInTransaction.v1").ToTimeLimitedDataProtector();
        _lifetime = lifetime;
    }

    public string Protect(SignInTransaction transaction) =>
        _protector.Protect(JsonSerializer.Serialize(transaction, Json), _lifetime);

    public bool TryUnprotect(string? protectedValue, string? browserCookie, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SignInTransaction? transaction)
    {
        transaction = null;
        if (string.IsNullOrEmpty(protectedValue) || protectedValue.Length > 16 * 1024 || string.IsNullOrEmpty(browserCookie))
        {
            return false;
        }

        try
        {
            transaction = JsonSerializer.Deserialize<SignInTransaction>(_protector.Unprotect(protectedValue), Json);
        }
        catch (Exception e) when (e is CryptographicException or JsonException or FormatException)
        {
            return false;
        }

        if (transaction is null || !BindingMatches(transaction.BrowserBinding, browserCookie))
        {
            transaction = null;
            return false;
        }

        return true;
    }

    /// <summary>The value a transaction stores for a browser cookie: base64url SHA-256.</summary>
    public static string Bind(string browserCookie) =>
        Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(browserCookie)));

    private static bool BindingMatches(string stored, string browserCookie) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(stored), Encoding.ASCII.GetBytes(Bind(browserCookie)));
}
