namespace Gatehouse.Protocol.X224;

/// <summary>
/// [X.224] 13.7 Data (DT) TPDU, class 0, as RDP uses it ([MS-RDPBCGR] 2.2.1.3, x224Data):
/// <c>LI(1)=2 | code(1)=0xF0 | EOT(1)=0x80</c>. Slow-path PDUs after the connection sequence are TPKT + this header + MCS.
/// </summary>
public static class X224Data
{
    internal const string Name = "X.224 Data";

    /// <summary>Size of the X.224 Data header.</summary>
    public const int HeaderSize = 1 /* LI */ + 1 /* DT code */ + 1 /* EOT */;

    /// <summary>TPKT header plus X.224 Data header: the bytes in front of every slow-path MCS PDU.</summary>
    public const int FrameOverhead = TpktHeader.Size + HeaderSize;

    /// <summary>The DT TPDU code.</summary>
    public const byte Code = 0xF0;

    /// <summary>Unwraps a TPKT frame that carries an X.224 Data TPDU and returns its user data (an MCS PDU).</summary>
    public static bool TryUnwrapFrame(ReadOnlySpan<byte> frame, out ReadOnlySpan<byte> userData, out PduError? error)
    {
        userData = default;
        return Tpkt.TryUnwrap(frame, out var tpdu, out error) && TryUnwrap(tpdu, out userData, out error);
    }

    /// <summary>Parses the X.224 Data header at the start of <paramref name="tpdu"/> and returns the rest.</summary>
    public static bool TryUnwrap(ReadOnlySpan<byte> tpdu, out ReadOnlySpan<byte> userData, out PduError? error)
    {
        userData = default;
        error = null;
        if (tpdu.Length < HeaderSize)
        {
            error = PduError.NotEnough(Name, "header", HeaderSize, tpdu.Length);
            return false;
        }

        if (tpdu[1] != Code)
        {
            error = PduError.Unexpected(Name, "code", $"0x{tpdu[1]:X2} is not a Data TPDU");
            return false;
        }

        if (tpdu[0] != 2)
        {
            error = PduError.Invalid(Name, "LI", $"{tpdu[0]}, expected 2");
            return false;
        }

        if ((tpdu[2] & 0x80) == 0)
        {
            // RDP never segments at the X.224 layer; a TPDU without EOT would need reassembly we do not do.
            error = PduError.Unsupported(Name, "EOT", "segmented X.224 data is not used by RDP");
            return false;
        }

        userData = tpdu[HeaderSize..];
        return true;
    }

    /// <summary>Writes TPKT + X.224 Data headers for a frame of <paramref name="frameLength"/> bytes in total.</summary>
    public static void WriteFrameHeader(Span<byte> destination, int frameLength)
    {
        Tpkt.WriteHeader(destination, frameLength);
        destination[4] = 2;
        destination[5] = Code;
        destination[6] = 0x80;
    }
}
