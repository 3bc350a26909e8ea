namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// Where each field of a TS_INFO_PACKET sits (offsets relative to the packet). One validating pass that allocates
/// nothing on success, shared by the parser (which then copies the bounded slices) and by the rewriter.
/// </summary>
internal struct ClientInfoLayout
{
    public const string Name = "TS_INFO_PACKET";

    /// <summary>Largest string in bytes, terminator excluded (512 bytes with the terminator, RDP 5.1 and later).</summary>
    public const int MaxStringBytes = 510;

    /// <summary>clientAddress cap, terminator included.</summary>
    public const int MaxClientAddressBytes = 80;

    /// <summary>clientDir cap, terminator included.</summary>
    public const int MaxClientDirBytes = 512;

    /// <summary>TS_TIME_ZONE_INFORMATION size.</summary>
    public const int TimeZoneSize = 172;

    /// <summary>ARC_CS_PRIVATE_PACKET size.</summary>
    public const int CookieSize = 28;

    /// <summary>reserved1 + reserved2 + cbDynamicDSTTimeZoneKeyName + key name (at most 254) + dynamicDaylightTimeDisabled.</summary>
    public const int MaxTailBytes = 2 + 2 + 2 + 254 + 2;

    /// <summary>codePage + flags + five cb fields.</summary>
    public const int FixedSize = 4 /* CodePage */ + 4 /* flags */ + (5 * 2) /* cbDomain..cbWorkingDir */;

    public uint CodePage;
    public ClientInfoFlags Flags;
    public int DomainOffset;
    public int DomainLength;
    public int UserNameOffset;
    public int UserNameLength;
    public int PasswordOffset;
    public int PasswordLength;
    public int AlternateShellOffset;
    public int AlternateShellLength;
    public int WorkingDirOffset;
    public int WorkingDirLength;

    /// <summary>Start of the extended info packet; equals <see cref="End"/> when it is absent.</summary>
    public int ExtendedOffset;
    public bool HasExtended;
    public ushort ClientAddressFamily;
    public int ClientAddressOffset;
    public int ClientAddressLength;
    public int ClientDirOffset;
    public int ClientDirLength;
    public int TimeZoneOffset;
    public int SessionIdOffset;
    public int PerformanceFlagsOffset;

    /// <summary>Offset of cbAutoReconnectCookie, or -1.</summary>
    public int CookieLengthOffset;
    public int CookieOffset;
    public int CookieLength;
    public int TailOffset;
    public int TailLength;
    public int End;

    public static bool TryScan(ReadOnlySpan<byte> packet, out ClientInfoLayout layout, out PduError? error)
    {
        layout = default;
        layout.TimeZoneOffset = -1;
        layout.SessionIdOffset = -1;
        layout.PerformanceFlagsOffset = -1;
        layout.CookieLengthOffset = -1;
        var reader = new WireReader(packet, Name);
        Scan(ref reader, ref layout);
        error = reader.Error;
        return error is null;
    }

    private static void Scan(ref WireReader reader, ref ClientInfoLayout layout)
    {
        if (!reader.TryReadU32LE("CodePage", out layout.CodePage) || !reader.TryReadU32LE("flags", out var flags))
        {
            return;
        }

        layout.Flags = (ClientInfoFlags)flags;
        if ((layout.Flags & ClientInfoFlags.Unicode) == 0)
        {
            reader.Fail(PduError.Unsupported(Name, "flags", "ANSI strings (no INFO_UNICODE) are not supported"));
            return;
        }

        if (!TryReadStringLength(ref reader, "cbDomain", out layout.DomainLength)
            || !TryReadStringLength(ref reader, "cbUserName", out layout.UserNameLength)
            || !TryReadStringLength(ref reader, "cbPassword", out layout.PasswordLength)
            || !TryReadStringLength(ref reader, "cbAlternateShell", out layout.AlternateShellLength)
            || !TryReadStringLength(ref reader, "cbWorkingDir", out layout.WorkingDirLength)
            || !TryReadString(ref reader, "Domain", layout.DomainLength, out layout.DomainOffset)
            || !TryReadString(ref reader, "UserName", layout.UserNameLength, out layout.UserNameOffset)
            || !TryReadString(ref reader, "Password", layout.PasswordLength, out layout.PasswordOffset)
            || !TryReadString(ref reader, "AlternateShell", layout.AlternateShellLength, out layout.AlternateShellOffset)
            || !TryReadString(ref reader, "WorkingDir", layout.WorkingDirLength, out layout.WorkingDirOffset))
        {
            return;
        }

        layout.ExtendedOffset = reader.Position;
        layout.End = reader.Position;
        layout.TailOffset = reader.Position;
        if (reader.Remaining == 0)
        {
            return;
        }

        layout.HasExtended = true;
        if (!reader.TryReadU16LE("clientAddressFamily", out layout.ClientAddressFamily)
            || !TryReadTerminated(ref reader, "cbClientAddress", "clientAddress", MaxClientAddressBytes, out layout.ClientAddressOffset, out layout.ClientAddressLength)
            || !TryReadTerminated(ref reader, "cbClientDir", "clientDir", MaxClientDirBytes, out layout.ClientDirOffset, out layout.ClientDirLength))
        {
            return;
        }

        // The remaining fields are optional, but each one present implies all before it.
        if (reader.Remaining > 0)
        {
            layout.TimeZoneOffset = reader.Position;
            if (!reader.TrySkip(TimeZoneSize, "clientTimeZone"))
            {
                return;
            }
        }

        if (reader.Remaining > 0)
        {
            layout.SessionIdOffset = reader.Position;
            if (!reader.TrySkip(4, "clientSessionId"))
            {
                return;
            }
        }

        if (reader.Remaining > 0)
        {
            layout.PerformanceFlagsOffset = reader.Position;
            if (!reader.TrySkip(4, "performanceFlags"))
            {
                return;
            }
        }

        if (reader.Remaining > 0)
        {
            layout.CookieLengthOffset = reader.Position;
            if (!reader.TryReadU16LE("cbAutoReconnectCookie", out var cookieLength))
            {
                return;
            }

            if (cookieLength != 0 && cookieLength != CookieSize)
            {
                reader.FailInvalid("cbAutoReconnectCookie", $"{cookieLength}, expected 0 or {CookieSize}");
                return;
            }

            layout.CookieOffset = reader.Position;
            layout.CookieLength = cookieLength;
            if (!reader.TrySkip(cookieLength, "autoReconnectCookie"))
            {
                return;
            }
        }

        layout.TailOffset = reader.Position;
        layout.TailLength = reader.Remaining;
        if (layout.TailLength > MaxTailBytes)
        {
            reader.Fail(PduError.TooLarge(Name, "reserved1..dynamicDaylightTimeDisabled", layout.TailLength, MaxTailBytes));
            return;
        }

        if (TryCheckTail(ref reader))
        {
            layout.End = reader.Position;
        }
    }

    /// <summary>
    /// reserved1 (2), reserved2 (2), cbDynamicDSTTimeZoneKeyName (2), dynamicDSTTimeZoneKeyName (cb, at most 254),
    /// dynamicDaylightTimeDisabled (2): each optional, in order. Kept raw, but the lengths must add up.
    /// </summary>
    private static bool TryCheckTail(ref WireReader reader)
    {
        var length = reader.Remaining;
        if (length is 0 or 2 or 4)
        {
            return reader.TrySkip(length, "reserved1");
        }

        if (!reader.TrySkip(4, "reserved1, reserved2") || !reader.TryReadU16LE("cbDynamicDSTTimeZoneKeyName", out var cb))
        {
            return false;
        }

        if (cb > 254 || (cb & 1) != 0)
        {
            return reader.FailInvalid("cbDynamicDSTTimeZoneKeyName", $"{cb} is odd or larger than 254");
        }

        if (!reader.TrySkip(cb, "dynamicDSTTimeZoneKeyName"))
        {
            return false;
        }

        return reader.Remaining is 0 or 2
            ? reader.TrySkip(reader.Remaining, "dynamicDaylightTimeDisabled")
            : reader.FailInvalid("dynamicDaylightTimeDisabled", $"{reader.Remaining} bytes where 0 or 2 are allowed");
    }

    private static bool TryReadStringLength(ref WireReader reader, string field, out int length)
    {
        length = 0;
        if (!reader.TryReadU16LE(field, out var raw))
        {
            return false;
        }

        length = raw;
        if (raw > MaxStringBytes)
        {
            return reader.Fail(PduError.TooLarge(Name, field, raw, MaxStringBytes));
        }

        return (raw & 1) == 0 || reader.FailInvalid(field, $"{raw} is odd for a UTF-16 string");
    }

    /// <summary>A string whose cb excludes the mandatory 2-byte NUL that follows it.</summary>
    private static bool TryReadString(ref WireReader reader, string field, int length, out int offset)
    {
        offset = reader.Position;
        if (!reader.TrySkip(length, field) || !reader.TryReadU16LE(field, out var terminator))
        {
            return false;
        }

        return terminator == 0 || reader.FailInvalid(field, "missing the NUL terminator");
    }

    /// <summary>An extended-info string whose cb includes its NUL terminator (0 = absent).</summary>
    private static bool TryReadTerminated(ref WireReader reader, string lengthField, string field, int max, out int offset, out int length)
    {
        offset = 0;
        length = 0;
        if (!reader.TryReadU16LE(lengthField, out var raw))
        {
            return false;
        }

        if (raw > max)
        {
            return reader.Fail(PduError.TooLarge(Name, lengthField, raw, max));
        }

        if ((raw & 1) != 0)
        {
            return reader.FailInvalid(lengthField, $"{raw} is odd for a UTF-16 string");
        }

        offset = reader.Position;
        length = raw;
        if (!reader.TryReadBytes(raw, field, out var bytes))
        {
            return false;
        }

        return raw == 0 || (bytes[^1] == 0 && bytes[^2] == 0) || reader.FailInvalid(field, "missing the NUL terminator");
    }
}
