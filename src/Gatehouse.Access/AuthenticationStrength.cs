using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gatehouse.Access;

/// <summary>
/// An authentication strength in the shape of Entra's Graph <c>authenticationStrengthPolicy</c>: which combinations of
/// authentication methods (<c>fido2</c>, <c>password,softwareOath</c>…) satisfy it. A policy's grant controls carry
/// one as <c>authenticationStrength</c>, either in full or as a reference by <c>id</c> or <c>displayName</c> that
/// <see cref="AuthenticationStrengths.Resolve"/> fills in.
/// </summary>
public sealed record AuthenticationStrength
{
    /// <summary>Id: a built-in's fixed id (<c>00000000-0000-0000-0000-000000000004</c>) or a custom strength's GUID.</summary>
    public string? Id { get; init; }

    /// <summary>Name, unique per tenant.</summary>
    public string? DisplayName { get; init; }

    /// <summary>What it is for.</summary>
    public string? Description { get; init; }

    /// <summary><c>builtIn</c> or <c>custom</c>.</summary>
    public string? PolicyType { get; init; }

    /// <summary>What satisfying it counts as (<c>mfa</c> or <c>none</c>), as Entra reports it.</summary>
    public string? RequirementsSatisfied { get; init; }

    /// <summary>The method combinations that satisfy it (any one of them), as Entra names them.</summary>
    public IReadOnlyList<string> AllowedCombinations { get; init; } = [];

    /// <summary>The name, or the id when it has none.</summary>
    [JsonIgnore]
    public string Name => DisplayName ?? Id ?? "(unnamed)";
}

/// <summary>What the next sign-in step must be to meet an authentication strength.</summary>
public enum StrengthStep
{
    /// <summary>The methods done already satisfy the strength.</summary>
    Satisfied,

    /// <summary>The password was entered; the authenticator app's code (<c>password,softwareOath</c>) would satisfy it.</summary>
    AskAppCode,

    /// <summary>Only a passkey (<c>fido2</c>) among Gatehouse's methods would satisfy it.</summary>
    NeedsPasskey,

    /// <summary>No method Gatehouse offers can satisfy it (certificates, Windows Hello, push…).</summary>
    Unachievable,
}

/// <summary>
/// The authentication strength one enforced (or report-only) policy requires, and the seam the sign-in pages use:
/// <see cref="IsSatisfiedBy"/> answers "do the methods done (the OIDC <c>amr</c>) meet it", <see cref="NextStep"/> "which
/// step next", and <see cref="AllowsPasskey"/> "may a passkey be offered". The passkey sign-in step calls these with
/// the transaction's <c>amr</c> (<c>fido</c>, <c>mfa</c> after a passkey) to decide whether to offer a passkey before
/// the one-time code, and whether a passkey alone completes the sign-in.
/// </summary>
/// <param name="Strength">The strength (resolved: its combinations are filled in).</param>
/// <param name="PolicyName">The policy that requires it.</param>
public sealed record StrengthRequirement(AuthenticationStrength Strength, string PolicyName)
{
    /// <summary>True when the methods in <paramref name="amr"/> meet the strength.</summary>
    public bool IsSatisfiedBy(IEnumerable<string> amr) => AuthenticationStrengths.IsSatisfiedBy(Strength, amr);

    /// <summary>True when a passkey (<c>fido2</c>) satisfies the strength, so the pages may offer one.</summary>
    public bool AllowsPasskey => Accepts(AuthenticationStrengths.Fido2);

    /// <summary>True when the password and the authenticator app's code satisfy the strength.</summary>
    public bool AllowsPasswordAndApp => Accepts(AuthenticationStrengths.PasswordSoftwareOath);

    /// <summary>True when the password alone satisfies the strength.</summary>
    public bool AllowsPasswordOnly => Accepts(AuthenticationStrengths.Password);

    /// <summary>The step that would meet the strength after the methods in <paramref name="amr"/>.</summary>
    public StrengthStep NextStep(IEnumerable<string> amr)
    {
        ArgumentNullException.ThrowIfNull(amr);
        var done = amr.ToList();
        if (IsSatisfiedBy(done))
        {
            return StrengthStep.Satisfied;
        }

        if (AllowsPasswordAndApp && done.Contains(AuthenticationStrengths.AmrPassword, StringComparer.Ordinal))
        {
            return StrengthStep.AskAppCode;
        }

        return AllowsPasskey ? StrengthStep.NeedsPasskey : StrengthStep.Unachievable;
    }

    /// <summary>The precise reason for the sign-in log: <c>Phishing-resistant MFA (policy 'X') needs fido2; the sign-in used password,softwareOath</c>.</summary>
    public string Describe(IEnumerable<string> amr)
    {
        ArgumentNullException.ThrowIfNull(amr);
        var achievable = AuthenticationStrengths.AchievableIn(Strength);
        var needs = achievable.Count > 0 ? string.Join(" or ", achievable) : string.Join(" or ", Strength.AllowedCombinations) + " (none of which Gatehouse offers)";
        return $"{Strength.Name} (policy '{PolicyName}') needs {needs}; the sign-in used {AuthenticationStrengths.DescribeMethods(amr)}";
    }

    /// <summary>
    /// What the user can do (a sentence): sign in with a passkey (registered at <paramref name="securityInfoUrl"/>),
    /// use the authenticator app, or, when nothing Gatehouse offers would do, ask the administrator.
    /// </summary>
    public string Fix(string securityInfoUrl)
    {
        ArgumentNullException.ThrowIfNull(securityInfoUrl);
        if (AllowsPasswordAndApp)
        {
            return "Use your authenticator app: sign in with your password and the app's one-time code (enroll an app if you have none).";
        }

        if (AllowsPasskey)
        {
            return $"Sign in with a passkey, or register one at {securityInfoUrl}";
        }

        return $"The authentication strength '{Strength.Name}' accepts only {string.Join(", ", Strength.AllowedCombinations)}, none of which Gatehouse offers; an administrator must change the policy or exclude the user.";
    }

    private bool Accepts(string combination) => Strength.AllowedCombinations.Any(c => AuthenticationStrengths.SameCombination(c, combination));
}

/// <summary>
/// Entra's built-in authentication strengths and method combinations, the mapping from the OIDC <c>amr</c> a sign-in
/// recorded (<c>pwd</c>, <c>otp</c>, <c>fido</c>, <c>tap</c>, <c>mfa</c>) to the combinations it satisfied, and the
/// parser for custom strengths (length caps, typed errors, unknown members and combinations refused).
/// </summary>
public static class AuthenticationStrengths
{
    /// <summary>Largest strength document accepted.</summary>
    public const int MaxBytes = 16 * 1024;

    /// <summary>Most combinations in one strength.</summary>
    public const int MaxCombinations = 32;

    /// <summary>Longest name.</summary>
    public const int MaxNameLength = 128;

    /// <summary>Id of the built-in "Multifactor authentication".</summary>
    public const string MultifactorId = "00000000-0000-0000-0000-000000000002";

    /// <summary>Id of the built-in "Passwordless MFA".</summary>
    public const string PasswordlessId = "00000000-0000-0000-0000-000000000003";

    /// <summary>Id of the built-in "Phishing-resistant MFA".</summary>
    public const string PhishingResistantId = "00000000-0000-0000-0000-000000000004";

    /// <summary>The combination "password".</summary>
    public const string Password = "password";

    /// <summary>The combination "password,softwareOath" (password and an authenticator app's code).</summary>
    public const string PasswordSoftwareOath = "password,softwareOath";

    /// <summary>The combination "fido2" (a passkey).</summary>
    public const string Fido2 = "fido2";

    /// <summary>A one-time Temporary Access Pass.</summary>
    public const string TemporaryAccessPassOneTime = "temporaryAccessPassOneTime";

    /// <summary>A multi-use Temporary Access Pass.</summary>
    public const string TemporaryAccessPassMultiUse = "temporaryAccessPassMultiUse";

    /// <summary><c>amr</c> of a password.</summary>
    public const string AmrPassword = "pwd";

    /// <summary><c>amr</c> of an authenticator app's one-time code.</summary>
    public const string AmrOtp = "otp";

    /// <summary><c>amr</c> of a passkey.</summary>
    public const string AmrFido = "fido";

    /// <summary><c>amr</c> of a Temporary Access Pass.</summary>
    public const string AmrTap = "tap";

    /// <summary><c>amr</c> of multi-factor authentication.</summary>
    public const string AmrMfa = "mfa";

    /// <summary>Entra's single authentication method modes, from which combinations are made.</summary>
    public static IReadOnlyList<string> MethodModes { get; } =
    [
        "password", "voice", "hardwareOath", "softwareOath", "sms", "fido2", "windowsHelloForBusiness",
        "microsoftAuthenticatorPush", "deviceBasedPush", "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse",
        "email", "x509CertificateSingleFactor", "x509CertificateMultiFactor", "federatedSingleFactor",
        "federatedMultiFactor", "qrCodePin",
    ];

    /// <summary>The combinations a Gatehouse sign-in can achieve today; any other is accepted in a policy but never met.</summary>
    public static IReadOnlyList<string> Achievable { get; } = [Password, PasswordSoftwareOath, Fido2, TemporaryAccessPassOneTime, TemporaryAccessPassMultiUse];

    /// <summary>The three built-in strengths, with Entra's ids, names and combinations.</summary>
    public static IReadOnlyList<AuthenticationStrength> BuiltIn { get; } =
    [
        new()
        {
            Id = MultifactorId,
            DisplayName = "Multifactor authentication",
            Description = "Combinations of methods that satisfy strong authentication, such as a password + SMS",
            PolicyType = "builtIn",
            RequirementsSatisfied = "mfa",
            AllowedCombinations =
            [
                "windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush",
                "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse", "password,microsoftAuthenticatorPush",
                "password,softwareOath", "password,hardwareOath", "password,sms", "password,voice", "federatedMultiFactor",
                "microsoftAuthenticatorPush,federatedSingleFactor", "softwareOath,federatedSingleFactor",
                "hardwareOath,federatedSingleFactor", "sms,federatedSingleFactor", "voice,federatedSingleFactor",
            ],
        },
        new()
        {
            Id = PasswordlessId,
            DisplayName = "Passwordless MFA",
            Description = "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the Microsoft Authenticator",
            PolicyType = "builtIn",
            RequirementsSatisfied = "mfa",
            AllowedCombinations = ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"],
        },
        new()
        {
            Id = PhishingResistantId,
            DisplayName = "Phishing-resistant MFA",
            Description = "Phishing-resistant, passwordless methods for the strongest authentication, such as a FIDO2 security key",
            PolicyType = "builtIn",
            RequirementsSatisfied = "mfa",
            AllowedCombinations = ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
        },
    ];

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
        MaxDepth = 8,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// The combinations the methods in <paramref name="amr"/> satisfied: <c>pwd</c> → <c>password</c>, <c>pwd</c>+<c>otp</c>
    /// → <c>password,softwareOath</c>, <c>fido</c> → <c>fido2</c>, <c>tap</c> → both Temporary Access Pass combinations
    /// (the <c>amr</c> does not say which kind of pass it was).
    /// </summary>
    public static IReadOnlyList<string> CombinationsOf(IEnumerable<string> amr)
    {
        ArgumentNullException.ThrowIfNull(amr);
        var set = amr.ToHashSet(StringComparer.Ordinal);
        var result = new List<string>(4);
        if (set.Contains(AmrPassword))
        {
            result.Add(Password);
            if (set.Contains(AmrOtp))
            {
                result.Add(PasswordSoftwareOath);
            }
        }

        if (set.Contains(AmrFido))
        {
            result.Add(Fido2);
        }

        if (set.Contains(AmrTap))
        {
            result.Add(TemporaryAccessPassOneTime);
            result.Add(TemporaryAccessPassMultiUse);
        }

        return result;
    }

    /// <summary>The methods of <paramref name="amr"/> as combination names for messages (<c>password,softwareOath</c>); "no method" when none.</summary>
    public static string DescribeMethods(IEnumerable<string> amr)
    {
        var combinations = CombinationsOf(amr);
        if (combinations.Count == 0)
        {
            return "no method Gatehouse records";
        }

        // The strongest first: the longest password combination stands for the shorter one.
        var shown = combinations.Where(c => !(c == Password && combinations.Contains(PasswordSoftwareOath)) && c != TemporaryAccessPassMultiUse).ToList();
        return string.Join(" and ", shown.Select(c => c == TemporaryAccessPassOneTime ? "temporaryAccessPass" : c));
    }

    /// <summary>True when one combination the methods in <paramref name="amr"/> satisfied is allowed by <paramref name="strength"/>.</summary>
    public static bool IsSatisfiedBy(AuthenticationStrength strength, IEnumerable<string> amr)
    {
        ArgumentNullException.ThrowIfNull(strength);
        var done = CombinationsOf(amr);
        return strength.AllowedCombinations.Any(allowed => done.Any(d => SameCombination(allowed, d)));
    }

    /// <summary>The strength's combinations that a Gatehouse sign-in can achieve.</summary>
    public static IReadOnlyList<string> AchievableIn(AuthenticationStrength strength)
    {
        ArgumentNullException.ThrowIfNull(strength);
        return [.. Achievable.Where(a => strength.AllowedCombinations.Any(c => SameCombination(c, a)))];
    }

    /// <summary>True when two combinations name the same methods (order and spaces do not matter: <c>password, softwareOath</c>).</summary>
    public static bool SameCombination(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return Normalize(a) == Normalize(b);
    }

    /// <summary>A combination in canonical form: its methods trimmed, in Entra's order, joined by commas.</summary>
    public static string Normalize(string combination)
    {
        ArgumentNullException.ThrowIfNull(combination);
        var parts = combination.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return string.Join(',', parts.OrderBy(p => IndexOfMode(p)).ThenBy(p => p, StringComparer.Ordinal));
    }

    /// <summary>Null when <paramref name="combination"/> is made of known method modes; otherwise what is wrong.</summary>
    public static string? ValidateCombination(string? combination)
    {
        if (string.IsNullOrWhiteSpace(combination) || combination.Length > 256)
        {
            return "a combination must be one to a few method names separated by commas (e.g. \"fido2\" or \"password,softwareOath\").";
        }

        var parts = combination.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length > 4 || parts.Any(p => p.Length == 0))
        {
            return $"\"{Clip(combination)}\" is not a combination of method names separated by commas.";
        }

        if (parts.FirstOrDefault(p => IndexOfMode(p) < 0) is { } unknown)
        {
            return $"\"{Clip(unknown)}\" is not an authentication method; use {string.Join(", ", MethodModes)}.";
        }

        return parts.Distinct(StringComparer.Ordinal).Count() == parts.Length ? null : $"\"{Clip(combination)}\" names a method twice.";
    }

    /// <summary>Null when the strength is consistent (a name, one to <see cref="MaxCombinations"/> known combinations); otherwise what to fix.</summary>
    public static string? Validate(AuthenticationStrength strength)
    {
        ArgumentNullException.ThrowIfNull(strength);
        if (strength.DisplayName is { Length: > MaxNameLength } || strength.Description is { Length: > 1024 } || strength.Id is { Length: > 64 })
        {
            return $"The authentication strength's displayName (≤ {MaxNameLength}), description (≤ 1024) or id (≤ 64) is too long.";
        }

        if (strength.AllowedCombinations.Count > MaxCombinations)
        {
            return $"An authentication strength may list at most {MaxCombinations} combinations.";
        }

        foreach (var combination in strength.AllowedCombinations)
        {
            if (ValidateCombination(combination) is { } error)
            {
                return $"authenticationStrength.allowedCombinations: {error}";
            }
        }

        return null;
    }

    /// <summary>Parses and validates one custom strength (Entra's Graph JSON); it needs a displayName and at least one combination.</summary>
    public static bool TryParse(string json, [NotNullWhen(true)] out AuthenticationStrength? strength, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(json);
        strength = null;
        if (json.Length > MaxBytes)
        {
            error = $"The authentication strength document is larger than {MaxBytes} bytes.";
            return false;
        }

        try
        {
            strength = JsonSerializer.Deserialize<AuthenticationStrength>(json, Options);
        }
        catch (JsonException e)
        {
            error = $"The authentication strength is not valid: {e.Message}";
            return false;
        }

        if (strength is null || string.IsNullOrWhiteSpace(strength.DisplayName) || strength.AllowedCombinations.Count == 0)
        {
            strength = null;
            error = "An authentication strength needs a displayName and at least one of allowedCombinations.";
            return false;
        }

        error = Validate(strength);
        if (error is not null)
        {
            strength = null;
            return false;
        }

        return true;
    }

    /// <summary>The strength as JSON.</summary>
    public static string Serialize(AuthenticationStrength strength) => JsonSerializer.Serialize(strength, Options);

    /// <summary>
    /// Finds the strength a policy refers to: by id, then by display name, among the built-ins and then
    /// <paramref name="custom"/>; a reference that names neither but lists its own combinations stands as it is.
    /// Null (and <paramref name="error"/>) when it names a strength that does not exist.
    /// </summary>
    public static AuthenticationStrength? Resolve(AuthenticationStrength reference, IEnumerable<AuthenticationStrength> custom, out string? error)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(custom);
        var all = BuiltIn.Concat(custom).ToList();
        var found = (reference.Id is { Length: > 0 } id ? all.FirstOrDefault(s => string.Equals(s.Id, id, StringComparison.OrdinalIgnoreCase)) : null)
            ?? (reference.DisplayName is { Length: > 0 } name ? all.FirstOrDefault(s => string.Equals(s.DisplayName, name, StringComparison.OrdinalIgnoreCase) || (s.Id == PhishingResistantId && string.Equals(name, "Phishing resistant MFA", StringComparison.OrdinalIgnoreCase))) : null);
        if (found is not null)
        {
            error = null;
            return found;
        }

        if (reference.AllowedCombinations.Count > 0)
        {
            error = null;
            return reference;
        }

        error = $"authenticationStrength '{reference.Id ?? reference.DisplayName ?? "(no id or name)"}' is neither a built-in strength nor a custom one of this tenant ('gatehouse policy strength list').";
        return null;
    }

    private static int IndexOfMode(string mode)
    {
        for (var i = 0; i < MethodModes.Count; i++)
        {
            if (string.Equals(MethodModes[i], mode, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static string Clip(string value) => value.Length <= 64 ? value : value[..64] + "…";
}
