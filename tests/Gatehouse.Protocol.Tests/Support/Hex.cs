using System.Globalization;

namespace Gatehouse.Protocol.Tests.Support;

/// <summary>Hex test vectors, written as the specification prints them: whitespace and <c>//</c> comments allowed.</summary>
internal static class Hex
{
    public static byte[] Bytes(string text)
    {
        var digits = new System.Text.StringBuilder(text.Length);
        foreach (var line in text.Split('\n'))
        {
            var code = line;
            var comment = code.IndexOf("//", StringComparison.Ordinal);
            if (comment >= 0)
            {
                code = code[..comment];
            }

            foreach (var c in code)
            {
                if (Uri.IsHexDigit(c))
                {
                    digits.Append(c);
                }
                else if (!char.IsWhiteSpace(c) && c != ',' && c != '-' && c != 'x' && c != 'X')
                {
                    throw new FormatException($"unexpected character '{c}' in hex vector");
                }
            }
        }

        // "0x" prefixes: drop a '0' that precedes an 'x' was already handled by skipping 'x'; reject odd lengths.
        if (digits.Length % 2 != 0)
        {
            throw new FormatException("odd number of hex digits");
        }

        return Convert.FromHexString(digits.ToString());
    }

    public static string String(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLower(CultureInfo.InvariantCulture);
}
