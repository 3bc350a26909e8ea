using System.Buffers;
using System.Buffers.Binary;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.11.1.1 Info Packet (TS_INFO_PACKET) Domain, UserName and Password: the credentials a gateway
/// injects into a Client Info PDU. Spans, so callers can pass strings
/// or pooled buffers without copies. Each value is at most 255 UTF-16 code units (510 bytes, 512 with the NUL).
/// </summary>
public readonly ref struct ClientInfoCredentials
{
    /// <summary>Creates the credentials to inject.</summary>
    /// <param name="domain">Domain (may be empty).</param>
    /// <param name="userName">UserName.</param>
    /// <param name="password">Password.</param>
    /// <param name="clearPasswordIsSmartCardPin">Also clear INFO_PASSWORD_IS_SC_PIN (true by default: the injected value is a password).</param>
    public ClientInfoCredentials(ReadOnlySpan<char> domain, ReadOnlySpan<char> userName, ReadOnlySpan<char> password, bool clearPasswordIsSmartCardPin = true)
    {
        Domain = domain;
        UserName = userName;
        Password = password;
        ClearPasswordIsSmartCardPin = clearPasswordIsSmartCardPin;
    }

    /// <summary>Domain.</summary>
    public ReadOnlySpan<char> Domain { get; }

    /// <summary>UserName.</summary>
    public ReadOnlySpan<char> UserName { get; }

    /// <summary>Password.</summary>
    public ReadOnlySpan<char> Password { get; }

    /// <summary>Whether INFO_PASSWORD_IS_SC_PIN is cleared.</summary>
    public bool ClearPasswordIsSmartCardPin { get; }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.11 Client Info PDU credential injection: rewrites a whole Client Info frame with a new domain,
/// user name and password, sets INFO_AUTOLOGON (optionally clears INFO_PASSWORD_IS_SC_PIN), drops the auto-reconnect
/// cookie (cbAutoReconnectCookie = 0) and fixes every enclosing length (cb* fields, the MCS Send Data PER length in
/// its 1- or 2-byte form, the TPKT length). Every other byte is copied unchanged. Allocates nothing on success.
/// </summary>
public static class ClientInfoRewriter
{
    internal const string Name = "Client Info rewrite";

    /// <summary>Largest injected value in UTF-16 code units (510 bytes, 512 with the NUL terminator).</summary>
    public const int MaxValueChars = ClientInfoLayout.MaxStringBytes / 2;

    /// <summary>Computes the size of the rewritten frame (validating the frame and the credentials).</summary>
    public static bool TryGetRewrittenSize(ReadOnlySpan<byte> frame, in ClientInfoCredentials credentials, out int size, out PduError? error)
    {
        size = 0;
        if (!TryPlan(frame, credentials, out var plan, out error))
        {
            return false;
        }

        size = plan.FrameLength;
        return true;
    }

    /// <summary>Rewrites <paramref name="frame"/> into <paramref name="output"/>; on refusal nothing is written.</summary>
    public static bool TryRewrite(ReadOnlySpan<byte> frame, in ClientInfoCredentials credentials, IBufferWriter<byte> output, out PduError? error)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!TryPlan(frame, credentials, out var plan, out error))
        {
            return false;
        }

        Write(frame, credentials, plan, output.GetSpan(plan.FrameLength));
        output.Advance(plan.FrameLength);
        return true;
    }

    /// <summary>Rewrites <paramref name="frame"/> into <paramref name="destination"/>, which must be large enough.</summary>
    public static bool TryRewrite(ReadOnlySpan<byte> frame, in ClientInfoCredentials credentials, Span<byte> destination, out int written, out PduError? error)
    {
        written = 0;
        if (!TryPlan(frame, credentials, out var plan, out error))
        {
            return false;
        }

        if (destination.Length < plan.FrameLength)
        {
            error = PduError.TooLarge(Name, "destination", plan.FrameLength, destination.Length);
            return false;
        }

        Write(frame, credentials, plan, destination);
        written = plan.FrameLength;
        return true;
    }

    private struct Plan
    {
        public McsSendData Mcs;
        public int PacketOffset;
        public ClientInfoLayout Layout;
        public int PacketLength;
        public int UserDataLength;
        public int FrameLength;
    }

    private static bool TryPlan(ReadOnlySpan<byte> frame, in ClientInfoCredentials credentials, out Plan plan, out PduError? error)
    {
        plan = default;
        if (!X224Data.TryUnwrapFrame(frame, out var mcsPdu, out error)
            || !McsSendData.TryParseRequest(mcsPdu, out plan.Mcs, out var userData, out error)
            || !ClientInfoPdu.TryReadSecurityHeader(userData, out _, out _, out error)
            || !ClientInfoLayout.TryScan(userData[ClientInfoPdu.SecurityHeaderSize..], out plan.Layout, out error)
            || !CheckValue(credentials.Domain, "domain", out error)
            || !CheckValue(credentials.UserName, "userName", out error)
            || !CheckValue(credentials.Password, "password", out error))
        {
            return false;
        }

        ref readonly var l = ref plan.Layout;
        plan.PacketOffset = X224Data.FrameOverhead + plan.Mcs.UserDataOffset + ClientInfoPdu.SecurityHeaderSize;
        plan.PacketLength = l.End
            - l.DomainLength - l.UserNameLength - l.PasswordLength - l.CookieLength
            + (2 * (credentials.Domain.Length + credentials.UserName.Length + credentials.Password.Length));
        plan.UserDataLength = ClientInfoPdu.SecurityHeaderSize + plan.PacketLength;
        if (plan.UserDataLength > McsSendData.MaxUserDataLength)
        {
            error = PduError.TooLarge(Name, "userData", plan.UserDataLength, McsSendData.MaxUserDataLength);
            return false;
        }

        plan.Mcs = McsSendData.Create(DomainMcsPduType.SendDataRequest, plan.Mcs.Initiator, plan.Mcs.ChannelId, plan.UserDataLength) with
        {
            PriorityAndSegmentation = plan.Mcs.PriorityAndSegmentation,
        };
        plan.FrameLength = X224Data.FrameOverhead + plan.Mcs.Size;
        if (plan.FrameLength > Tpkt.MaxPacketLength)
        {
            error = PduError.TooLarge(Name, "TPKT length", plan.FrameLength, Tpkt.MaxPacketLength);
            return false;
        }

        return true;
    }

    private static bool CheckValue(ReadOnlySpan<char> value, string field, out PduError? error)
    {
        error = null;
        if (value.Length > MaxValueChars)
        {
            error = PduError.TooLarge(Name, field, 2L * value.Length, ClientInfoLayout.MaxStringBytes);
            return false;
        }

        if (value.Contains('\0'))
        {
            error = PduError.Invalid(Name, field, "contains a NUL character");
            return false;
        }

        return true;
    }

    private static void Write(ReadOnlySpan<byte> frame, in ClientInfoCredentials credentials, in Plan plan, Span<byte> destination)
    {
        ref readonly var l = ref plan.Layout;
        var packet = frame.Slice(plan.PacketOffset, l.End);
        var d = destination[..plan.FrameLength];
        X224Data.WriteFrameHeader(d, plan.FrameLength);
        var o = X224Data.FrameOverhead + plan.Mcs.WriteHeader(d[X224Data.FrameOverhead..]);

        // Basic security header, unchanged.
        frame.Slice(plan.PacketOffset - ClientInfoPdu.SecurityHeaderSize, ClientInfoPdu.SecurityHeaderSize).CopyTo(d[o..]);
        o += ClientInfoPdu.SecurityHeaderSize;

        var flags = l.Flags | ClientInfoFlags.AutoLogon;
        if (credentials.ClearPasswordIsSmartCardPin)
        {
            flags &= ~ClientInfoFlags.PasswordIsSmartCardPin;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(d[o..], l.CodePage);
        BinaryPrimitives.WriteUInt32LittleEndian(d[(o + 4)..], (uint)flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[(o + 8)..], unchecked((ushort)(2 * credentials.Domain.Length)));
        BinaryPrimitives.WriteUInt16LittleEndian(d[(o + 10)..], unchecked((ushort)(2 * credentials.UserName.Length)));
        BinaryPrimitives.WriteUInt16LittleEndian(d[(o + 12)..], unchecked((ushort)(2 * credentials.Password.Length)));
        packet.Slice(14, 4).CopyTo(d[(o + 14)..]); // cbAlternateShell, cbWorkingDir
        o += ClientInfoLayout.FixedSize;

        o = WriteUtf16(d, o, credentials.Domain);
        o = WriteUtf16(d, o, credentials.UserName);
        o = WriteUtf16(d, o, credentials.Password);

        // AlternateShell, WorkingDir (with their terminators) and the extended info up to cbAutoReconnectCookie.
        var keepEnd = l.CookieLengthOffset >= 0 ? l.CookieLengthOffset : l.End;
        var kept = packet[l.AlternateShellOffset..keepEnd];
        kept.CopyTo(d[o..]);
        o += kept.Length;
        if (l.CookieLengthOffset >= 0)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(d[o..], 0);
            o += 2;
            var tail = packet.Slice(l.TailOffset, l.TailLength);
            tail.CopyTo(d[o..]);
            o += tail.Length;
        }

        if (o != plan.FrameLength)
        {
            throw new InvalidOperationException($"internal bug: rewrote {o} bytes of a {plan.FrameLength}-byte plan");
        }
    }

    private static int WriteUtf16(Span<byte> destination, int offset, ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(destination[offset..], c);
            offset += 2;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination[offset..], 0);
        return offset + 2;
    }
}
