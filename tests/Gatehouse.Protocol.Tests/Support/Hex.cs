namespace Gatehouse.Protocol.Tests.Support;

/// <summary>Hex test vectors (see <see cref="Gatehouse.Fuzz.Hex"/>): whitespace and <c>//</c> comments allowed.</summary>
internal static class Hex
{
    public static byte[] Bytes(string text) => Gatehouse.Fuzz.Hex.Bytes(text);

    public static string String(ReadOnlySpan<byte> bytes) => Gatehouse.Fuzz.Hex.Format(bytes);
}
