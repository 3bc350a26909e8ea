using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Identity;

/// <summary>RFC 6238 TOTP (HMAC-SHA-1, 30-second steps) and RFC 4648 Base32.</summary>
public static class Totp
{
    /// <summary>Step length in seconds.</summary>
    public const int StepSeconds = 30;

    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// <summary>The time step containing <paramref name="time"/>.</summary>
    public static long StepAt(DateTimeOffset time) => Math.DivRem(time.ToUnixTimeSeconds(), StepSeconds, out var r) - (r < 0 ? 1 : 0);

    /// <summary>RFC 4226 HOTP value of <paramref name="step"/> with <paramref name="digits"/> digits (6 to 8).</summary>
    public static string Compute(ReadOnlySpan<byte> secret, long step, int digits = 6)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(digits, 6);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(digits, 8);
        Span<byte> counter = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, step);
        Span<byte> mac = stackalloc byte[HMACSHA1.HashSizeInBytes];
#pragma warning disable CA5350 // RFC 6238 TOTP is defined over HMAC-SHA-1 (what authenticator apps implement); HMAC-SHA-1 is not broken as a PRF.
        HMACSHA1.HashData(secret, counter, mac);
#pragma warning restore CA5350
        var offset = mac[^1] & 0x0F;
        var binary = BinaryPrimitives.ReadInt32BigEndian(mac[offset..]) & 0x7FFF_FFFF;
        var modulo = digits switch { 6 => 1_000_000, 7 => 10_000_000, _ => 100_000_000 };
        return (binary % modulo).ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0');
    }

    /// <summary>
    /// Accepts <paramref name="code"/> for the step at <paramref name="now"/> or one step either side, refusing any step at or
    /// before <paramref name="lastUsedStep"/> (RFC 6238 §5.2: a code is accepted once). Comparison is constant-time.
    /// </summary>
    public static bool TryVerify(ReadOnlySpan<byte> secret, string code, DateTimeOffset now, long lastUsedStep, out long matchedStep)
    {
        matchedStep = 0;
        if (code is null)
        {
            return false;
        }

        code = code.Trim().Replace(" ", "", StringComparison.Ordinal);
        if (code.Length is < 6 or > 8 || !code.All(char.IsAsciiDigit))
        {
            return false;
        }

        var current = StepAt(now);
        var found = false;
        var codeBytes = Encoding.ASCII.GetBytes(code);
        for (var step = current - 1; step <= current + 1; step++)
        {
            var candidate = Encoding.ASCII.GetBytes(Compute(secret, step, code.Length));
            if (CryptographicOperations.FixedTimeEquals(candidate, codeBytes) && step > lastUsedStep && !found)
            {
                matchedStep = step;
                found = true;
            }
        }

        return found;
    }

    /// <summary>RFC 4648 §6 Base32 of <paramref name="data"/>, with '=' padding unless <paramref name="pad"/> is false.</summary>
    public static string Base32Encode(ReadOnlySpan<byte> data, bool pad = true)
    {
        var sb = new StringBuilder((data.Length + 4) / 5 * 8);
        var buffer = 0;
        var bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }

            buffer &= (1 << bits) - 1;
        }

        if (bits > 0)
        {
            sb.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }

        if (pad)
        {
            while (sb.Length % 8 != 0)
            {
                sb.Append('=');
            }
        }

        return sb.ToString();
    }

    /// <summary>Decodes Base32 (case-insensitive, padding and spaces optional); throws <see cref="FormatException"/> on bad input.</summary>
    public static byte[] Base32Decode(string text) =>
        TryBase32Decode(text, out var bytes) ? bytes : throw new FormatException("invalid base32");

    /// <summary>Decodes Base32 (case-insensitive, padding and spaces optional).</summary>
    public static bool TryBase32Decode(string text, out byte[] bytes)
    {
        bytes = [];
        if (text is null || text.Length > 4096)
        {
            return false;
        }

        var s = text.Replace(" ", "", StringComparison.Ordinal).TrimEnd('=');
        var output = new List<byte>(s.Length * 5 / 8);
        var buffer = 0;
        var bits = 0;
        foreach (var ch in s)
        {
            var c = char.ToUpperInvariant(ch);
            var v = Alphabet.IndexOf(c, StringComparison.Ordinal);
            if (v < 0)
            {
                return false;
            }

            buffer = (buffer << 5) | v;
            bits += 5;
            if (bits >= 8)
            {
                output.Add((byte)((buffer >> (bits - 8)) & 0xFF));
                bits -= 8;
            }

            buffer &= (1 << bits) - 1;
        }

        // RFC 4648: a final group of 1, 3 or 6 characters cannot occur, and leftover bits must be zero.
        if (s.Length % 8 is 1 or 3 or 6 || buffer != 0)
        {
            return false;
        }

        bytes = [.. output];
        return true;
    }

    /// <summary>The <c>otpauth://totp/…</c> URI authenticator apps scan.</summary>
    public static string OtpAuthUri(string issuer, string account, ReadOnlySpan<byte> secret)
    {
        ArgumentNullException.ThrowIfNull(issuer);
        ArgumentNullException.ThrowIfNull(account);
        var label = Uri.EscapeDataString(issuer) + ":" + Uri.EscapeDataString(account);
        return string.Create(CultureInfo.InvariantCulture,
            $"otpauth://totp/{label}?secret={Base32Encode(secret, pad: false)}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period={StepSeconds}");
    }
}
