using System.Text;
using Gatehouse.Identity;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The stored-password-hash parser (PHC <c>$argon2id$</c> and <c>$pbkdf2-sha512$</c> strings): a tampered row is a typed
/// <see cref="PasswordHashFormatError"/>, never an exception, and only strings within the caps are accepted. Inspection
/// only: it never derives (a verification at the caps would cost a gigabyte on purpose).
/// </summary>
public static class PasswordHashTargets
{
    public static IEnumerable<FuzzTarget> All()
    {
        byte[][] seeds =
        [
            "$argon2id$v=19$m=19456,t=2,p=1$3q2+7wAAAAAAAAAAAAAAAA$8J+Yg2G5F3E8m0W5dGd4yY5c1Z2l1p1b3Q0fJ8QyQ1E"u8.ToArray(),
            "$pbkdf2-sha512$i=210000$AAECAwQFBgcICQoLDA0ODw==$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="u8.ToArray(),
        ];
        yield return new FuzzTarget("password-hash-phc", seeds, Inspect);
    }

    private static void Inspect(ReadOnlySpan<byte> input)
    {
        var text = Encoding.UTF8.GetString(input);
        var error = PasswordHasher.Inspect(text);
        if (!Enum.IsDefined(error))
        {
            throw new OracleViolationException("an error outside PasswordHashFormatError");
        }

        if (error == PasswordHashFormatError.None
            && (text.Length > PasswordHasher.MaxHashChars
                || !(text.StartsWith("$argon2id$v=19$m=", StringComparison.Ordinal) || text.StartsWith("$pbkdf2-sha512$i=", StringComparison.Ordinal))))
        {
            throw new OracleViolationException("accepted a string that is too long or of an unknown algorithm");
        }
    }
}
