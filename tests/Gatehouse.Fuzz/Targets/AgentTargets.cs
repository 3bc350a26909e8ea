using System.Security.Cryptography;
using System.Text;
using Gatehouse.Gateway.Agents;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for what a host agent sends before it is trusted: the enrolment token and the assertion.</summary>
public static class AgentTargets
{
    private static readonly byte[] Token = Encoding.ASCII.GetBytes("ghjoin1.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8." + new string('a', 64));

    private static readonly byte[] Assertion = MakeAssertion();

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("agent-enrollment-token", [Token, Assertion], input =>
        {
            var text = Encoding.UTF8.GetString(input);
            if (EnrollmentToken.TryParse(text, out var token, out var error))
            {
                if (!EnrollmentToken.TryParse(token.ToString(), out var again, out _) || again != token)
                {
                    throw new OracleViolationException("a parsed token does not parse again to itself");
                }
            }
            else if (error is null)
            {
                throw new OracleViolationException("a refused token without a reason");
            }
        });
        yield return new FuzzTarget("agent-assertion", [Assertion, Token], input =>
        {
            var text = Encoding.UTF8.GetString(input);
            if (AgentAssertion.TryRead(text, out var claims, out var error))
            {
                _ = claims.AgentId;

                // A reader's yes is never a verifier's yes without the key: a fresh key must refuse it.
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                if (AgentAssertion.Verify(text, claims, key.ExportSubjectPublicKeyInfo(), claims.Audience!, DateTimeOffset.FromUnixTimeSeconds(claims.IssuedAt is > 0 and < 253402300799 ? claims.IssuedAt : 0)) is null)
                {
                    throw new OracleViolationException("an assertion verified against a key that did not sign it");
                }
            }
            else if (error is null)
            {
                throw new OracleViolationException("a refused assertion without a reason");
            }
        });
    }

    private static byte[] MakeAssertion()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return Encoding.ASCII.GetBytes(AgentAssertion.Create(key, new Guid("3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "https://login.gatehouse.test/agent/v1", new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero)));
    }
}
