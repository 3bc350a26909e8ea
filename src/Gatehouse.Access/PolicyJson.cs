using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gatehouse.Access;

/// <summary>
/// Reads and writes Conditional Access policies as Entra-shaped JSON (camelCase members, <c>state</c> values
/// <c>enabled</c>, <c>disabled</c>, <c>enabledForReportingButNotEnforced</c>), refusing unknown members and values
/// with a message that names them, so a typo in a policy file is caught before it silently applies nothing.
/// </summary>
public static class PolicyJson
{
    /// <summary>Largest policy document accepted.</summary>
    public const int MaxBytes = 64 * 1024;

    private static readonly string[] KnownControls = ["block", "mfa", "phishingResistantMfa"];

    /// <summary>The serializer options (camelCase, unknown members refused, indented output).</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
        MaxDepth = 16,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        RespectRequiredConstructorParameters = true,
    };

    /// <summary>Parses and validates one policy.</summary>
    public static bool TryParse(string json, [NotNullWhen(true)] out ConditionalAccessPolicy? policy, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(json);
        policy = null;
        if (json.Length > MaxBytes)
        {
            error = $"The policy document is larger than {MaxBytes} bytes.";
            return false;
        }

        try
        {
            policy = JsonSerializer.Deserialize<ConditionalAccessPolicy>(json, Options);
        }
        catch (JsonException e)
        {
            error = $"The policy is not valid: {e.Message}";
            return false;
        }

        if (policy is null)
        {
            error = "The policy document is empty (null).";
            return false;
        }

        error = Validate(policy);
        if (error is not null)
        {
            policy = null;
            return false;
        }

        return true;
    }

    /// <summary>The policy as JSON.</summary>
    public static string Serialize(ConditionalAccessPolicy policy) => JsonSerializer.Serialize(policy, Options);

    /// <summary>Null when the policy is consistent; otherwise what to fix.</summary>
    public static string? Validate(ConditionalAccessPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (string.IsNullOrWhiteSpace(policy.DisplayName))
        {
            return "displayName is required.";
        }

        var users = policy.Conditions.Users;
        if (users.IncludeUsers.Count == 0 && users.IncludeGroups.Count == 0)
        {
            return "conditions.users must include someone: includeUsers [\"All\"], user ids or UPNs, or includeGroups.";
        }

        if (policy.GrantControls is { } grant)
        {
            if (grant.Operator is not ("AND" or "OR"))
            {
                return $"grantControls.operator must be \"AND\" or \"OR\", not \"{grant.Operator}\".";
            }

            if (grant.BuiltInControls.FirstOrDefault(c => !KnownControls.Contains(c, StringComparer.OrdinalIgnoreCase)) is { } unknown)
            {
                return $"grantControls.builtInControls: \"{unknown}\" is not supported; use {string.Join(", ", KnownControls.Select(c => $"\"{c}\""))}.";
            }

            if (grant.BuiltInControls.Contains("block", StringComparer.OrdinalIgnoreCase) && (grant.BuiltInControls.Count > 1 || grant.AuthenticationStrength is not null))
            {
                return "grantControls: \"block\" cannot be combined with other controls.";
            }

            if (grant.AuthenticationStrength is { } strength)
            {
                if (grant.BuiltInControls.Contains("mfa", StringComparer.OrdinalIgnoreCase))
                {
                    return "grantControls: \"mfa\" and authenticationStrength cannot be used together (Entra refuses it too); an authentication strength such as \"Multifactor authentication\" already requires MFA.";
                }

                if (string.IsNullOrWhiteSpace(strength.Id) && string.IsNullOrWhiteSpace(strength.DisplayName) && strength.AllowedCombinations.Count == 0)
                {
                    return "grantControls.authenticationStrength needs an id, a displayName or allowedCombinations.";
                }

                if (AuthenticationStrengths.Validate(strength) is { } strengthError)
                {
                    return $"grantControls.{char.ToLowerInvariant(strengthError[0])}{strengthError[1..]}";
                }
            }
        }

        if (policy.SessionControls?.SignInFrequency is { } frequency)
        {
            if (frequency.Type is not ("hours" or "days") || frequency.Value <= 0)
            {
                return "sessionControls.signInFrequency needs a positive value and type \"hours\" or \"days\".";
            }
        }

        if (policy.SessionControls?.MaxSessionMinutes is <= 0)
        {
            return "sessionControls.maxSessionMinutes must be positive.";
        }

        if (policy.Conditions.SignInRiskLevels.FirstOrDefault(l => l is not ("low" or "medium" or "high")) is { } level)
        {
            return $"conditions.signInRiskLevels: \"{level}\" is not one of \"low\", \"medium\", \"high\".";
        }

        if (policy.GrantControls is null && policy.SessionControls is null)
        {
            return "The policy has neither grantControls nor sessionControls, so it would do nothing.";
        }

        return null;
    }
}
