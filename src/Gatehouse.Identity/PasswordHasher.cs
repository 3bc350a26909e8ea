using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Identity;

/// <summary>Outcome of <see cref="PasswordHasher.Verify(string, string)"/>.</summary>
public enum PasswordVerification
{
    /// <summary>Wrong password or unreadable hash.</summary>
    Failed = 0,

    /// <summary>The password matches.</summary>
    Success = 1,

    /// <summary>The password matches but the hash uses weaker parameters: store <see cref="PasswordHasher.Hash"/> again.</summary>
    SuccessRehashNeeded = 2,
}

/// <summary>
/// PBKDF2-HMAC-SHA512 password hashes (OWASP: at least 210,000 iterations) with the parameters in the string:
/// <c>$pbkdf2-sha512$i=&lt;iterations&gt;$&lt;salt base64&gt;$&lt;hash base64&gt;</c>.
/// </summary>
public sealed class PasswordHasher
{
    /// <summary>The minimum (and default) iteration count.</summary>
    public const int MinimumIterations = 210_000;

    /// <summary>Hashes carrying more iterations than this are refused (a tampered row must not stall sign-in).</summary>
    public const int MaximumIterations = 10_000_000;

    private const string Prefix = "$pbkdf2-sha512$i=";
    private const int SaltBytes = 16;
    private const int HashBytes = 64;
    private const int MaxPasswordChars = 1024;

    /// <summary>Creates a hasher with <paramref name="iterations"/> (at least <see cref="MinimumIterations"/>).</summary>
    public PasswordHasher(int iterations = MinimumIterations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, MinimumIterations);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(iterations, MaximumIterations);
        Iterations = iterations;
    }

    /// <summary>Iterations used for new hashes.</summary>
    public int Iterations { get; }

    /// <summary>Hashes <paramref name="password"/> with a fresh 128-bit salt.</summary>
    public string Hash(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(password.Length, MaxPasswordChars);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Derive(password, salt, Iterations, HashBytes);
        return string.Create(CultureInfo.InvariantCulture, $"{Prefix}{Iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
    }

    /// <summary>Checks <paramref name="password"/> against <paramref name="hash"/> in constant time.</summary>
    public PasswordVerification Verify(string hash, string password) => Verify(hash, password, out _);

    /// <summary>As <see cref="Verify(string, string)"/>; <paramref name="fingerprint"/> is the first 8 bytes of the derived value (base64) or empty.</summary>
    internal PasswordVerification Verify(string hash, string password, out string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(hash);
        ArgumentNullException.ThrowIfNull(password);
        fingerprint = "";
        if (password.Length > MaxPasswordChars || !TryParse(hash, out var iterations, out var salt, out var expected))
        {
            return PasswordVerification.Failed;
        }

        var actual = Derive(password, salt, iterations, expected.Length);
        fingerprint = Convert.ToBase64String(actual, 0, 8);
        if (!CryptographicOperations.FixedTimeEquals(actual, expected))
        {
            return PasswordVerification.Failed;
        }

        return iterations < Iterations || expected.Length != HashBytes || salt.Length != SaltBytes
            ? PasswordVerification.SuccessRehashNeeded
            : PasswordVerification.Success;
    }

    internal static bool TryParse(string hash, out int iterations, out byte[] salt, out byte[] expected)
    {
        iterations = 0;
        salt = [];
        expected = [];
        if (hash.Length > 512 || !hash.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = hash[Prefix.Length..].Split('$');
        if (parts.Length != 3
            || parts[0].Length is 0 or > 8
            || !parts[0].All(char.IsAsciiDigit)
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out iterations)
            || iterations < 1000 || iterations > MaximumIterations)
        {
            return false;
        }

        try
        {
            salt = Convert.FromBase64String(parts[1]);
            expected = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            return false;
        }

        return salt.Length >= 8 && expected.Length is >= 32 and <= 64;
    }

    private static byte[] Derive(string password, byte[] salt, int iterations, int length)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            return Rfc2898DeriveBytes.Pbkdf2(bytes, salt, iterations, HashAlgorithmName.SHA512, length);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }
}
