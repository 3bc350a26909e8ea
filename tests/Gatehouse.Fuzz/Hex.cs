namespace Gatehouse.Fuzz;

/// <summary>Hex vectors as the specification prints them: whitespace and <c>//</c> comments are allowed.</summary>
public static class Hex
{
    public static byte[] Bytes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
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
                else if (!char.IsWhiteSpace(c) && c != ',')
                {
                    throw new FormatException($"unexpected character '{c}' in hex vector");
                }
            }
        }

        if (digits.Length % 2 != 0)
        {
            throw new FormatException("odd number of hex digits");
        }

        return Convert.FromHexString(digits.ToString());
    }

    public static string Format(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);
}
