using System.Text;
using Gatehouse.Access;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The Conditional Access JSON parsers (Gatehouse.Access): a policy with an <c>authenticationStrength</c>
/// (<see cref="PolicyJson.TryParse"/>) and a custom strength (<see cref="AuthenticationStrengths.TryParse"/>). Admin
/// input, still hostile: parsed or refused with a message, never thrown; what parses also validates.
/// </summary>
public static class StrengthJsonTargets
{
    private static readonly byte[][] PolicySeeds =
    [
        Encoding.UTF8.GetBytes("""{"displayName":"P","conditions":{"users":{"includeUsers":["All"]}},"grantControls":{"operator":"OR","authenticationStrength":{"id":"00000000-0000-0000-0000-000000000004"}}}"""),
        Encoding.UTF8.GetBytes("""{"displayName":"P","state":"enabledForReportingButNotEnforced","conditions":{"users":{"includeUsers":["All"]},"hosts":{"includeHosts":["vm1"]}},"grantControls":{"operator":"AND","builtInControls":["mfa"],"authenticationStrength":{"displayName":"Custom","allowedCombinations":["fido2","password, softwareOath"]}}}"""),
    ];

    private static readonly byte[][] StrengthSeeds =
    [
        Encoding.UTF8.GetBytes("""{"displayName":"Passkey or app","allowedCombinations":["fido2","password,softwareOath"]}"""),
        Encoding.UTF8.GetBytes("""{"id":"00000000-0000-0000-0000-000000000004","displayName":"Phishing-resistant MFA","policyType":"builtIn","requirementsSatisfied":"mfa","allowedCombinations":["windowsHelloForBusiness","fido2","x509CertificateMultiFactor"]}"""),
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("policy-json", PolicySeeds, ParsePolicy);
        yield return new FuzzTarget("strength-json", StrengthSeeds, ParseStrength);
    }

    private static void ParsePolicy(ReadOnlySpan<byte> input)
    {
        var json = Encoding.UTF8.GetString(input);
        if (PolicyJson.TryParse(json, out var policy, out var error))
        {
            if (policy is null || error is not null || PolicyJson.Validate(policy) is not null)
            {
                throw new OracleViolationException("a parsed policy that does not validate, or comes with an error");
            }

            if (policy.GrantControls?.AuthenticationStrength is { } strength)
            {
                // Resolving and evaluating what parsed never throws either.
                _ = AuthenticationStrengths.Resolve(strength, [], out _);
                _ = AuthenticationStrengths.IsSatisfiedBy(strength, ["pwd", "otp", "mfa"]);
            }
        }
        else if (error is null || policy is not null)
        {
            throw new OracleViolationException("a refusal without a message, or with a policy");
        }
    }

    private static void ParseStrength(ReadOnlySpan<byte> input)
    {
        var json = Encoding.UTF8.GetString(input);
        if (AuthenticationStrengths.TryParse(json, out var strength, out var error))
        {
            if (strength is null || error is not null || AuthenticationStrengths.Validate(strength) is not null
                || strength.AllowedCombinations.Count is 0 or > AuthenticationStrengths.MaxCombinations)
            {
                throw new OracleViolationException("a parsed strength breaks its caps, or comes with an error");
            }

            _ = AuthenticationStrengths.AchievableIn(strength);
        }
        else if (error is null || strength is not null)
        {
            throw new OracleViolationException("a refusal without a message, or with a strength");
        }
    }
}
