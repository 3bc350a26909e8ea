namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// Small PNGs for the gateway's logo decoder, made with Python's zlib and struct: 8-bit RGB and RGBA, every row
/// filter type (row y uses filter y % 5), with an ancillary tEXt chunk.
/// </summary>
public static class PngCorpus
{
    /// <summary>3 × 5 RGB.</summary>
    public static byte[] Rgb3x5 => Hex.Bytes(
        "89504e470d0a1a0a0000000d49484452000000030000000508020000000f13c1f50000001074455874436f6d6d656e740068616e646d6164658b21d5130000002d4944415478da63606766d067e60a6716616437e5d26000212606232e08626649131191e402221690000308010059bf03597b478e7a0000000049454e44ae426082");

    /// <summary>4 × 6 RGBA.</summary>
    public static byte[] Rgba4x6 => Hex.Bytes(
        "89504e470d0a1a0a0000000d4948445200000004000000060806000000e4393f750000001074455874436f6d6d656e740068616e646d6164658b21d5130000004c4944415478da63606766f8afcfccf53a9c59e47a3db3dc61467653aeff1a0c5c6f609889c1888b011933b3a489348848727d836116b00c031266ff6bf45fffafcdebf0bf6ed7ebff061c0600682518d96c00baf10000000049454e44ae426082");
}
