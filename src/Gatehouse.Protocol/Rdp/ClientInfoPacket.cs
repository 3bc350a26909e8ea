using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Gatehouse.Protocol.Rdp;

/// <summary>
/// [MS-RDPBCGR] 2.2.1.11.1.1 Info Packet (TS_INFO_PACKET). Only the Unicode form (INFO_UNICODE) is supported. Strings
/// are kept as their raw UTF-16LE bytes without the NUL terminator (the <c>cb*</c> fields exclude it), so parse and
/// write round-trip byte-exact; the string properties decode them on demand.
/// </summary>
public sealed class ClientInfoPacket
{
    internal const string Name = ClientInfoLayout.Name;

    /// <summary>Largest Domain, UserName, Password, AlternateShell or WorkingDir in bytes, terminator excluded (512 with it).</summary>
    public const int MaxStringBytes = ClientInfoLayout.MaxStringBytes;

    /// <summary>CodePage (the active input locale identifier).</summary>
    public uint CodePage { get; init; }

    /// <summary>flags.</summary>
    public ClientInfoFlags Flags { get; init; } = ClientInfoFlags.Unicode;

    /// <summary>Domain as UTF-16LE without the terminator.</summary>
    public ReadOnlyMemory<byte> DomainBytes { get; init; }

    /// <summary>UserName as UTF-16LE without the terminator.</summary>
    public ReadOnlyMemory<byte> UserNameBytes { get; init; }

    /// <summary>Password as UTF-16LE without the terminator.</summary>
    public ReadOnlyMemory<byte> PasswordBytes { get; init; }

    /// <summary>AlternateShell as UTF-16LE without the terminator.</summary>
    public ReadOnlyMemory<byte> AlternateShellBytes { get; init; }

    /// <summary>WorkingDir as UTF-16LE without the terminator.</summary>
    public ReadOnlyMemory<byte> WorkingDirBytes { get; init; }

    /// <summary>extraInfo (TS_EXTENDED_INFO_PACKET), absent in RDP 4.0 clients.</summary>
    public ClientInfoExtended? Extended { get; init; }

    /// <summary>Domain.</summary>
    public string Domain => Encoding.Unicode.GetString(DomainBytes.Span);

    /// <summary>UserName.</summary>
    public string UserName => Encoding.Unicode.GetString(UserNameBytes.Span);

    /// <summary>Password.</summary>
    public string Password => Encoding.Unicode.GetString(PasswordBytes.Span);

    /// <summary>AlternateShell.</summary>
    public string AlternateShell => Encoding.Unicode.GetString(AlternateShellBytes.Span);

    /// <summary>WorkingDir.</summary>
    public string WorkingDir => Encoding.Unicode.GetString(WorkingDirBytes.Span);

    /// <summary>Encoded size.</summary>
    public int Size => ClientInfoLayout.FixedSize /* CodePage, flags, cbDomain..cbWorkingDir */
        + DomainBytes.Length + 2 /* Domain + NUL */
        + UserNameBytes.Length + 2 /* UserName + NUL */
        + PasswordBytes.Length + 2 /* Password + NUL */
        + AlternateShellBytes.Length + 2 /* AlternateShell + NUL */
        + WorkingDirBytes.Length + 2 /* WorkingDir + NUL */
        + (Extended?.Size ?? 0) /* extraInfo */;

    /// <summary>UTF-16LE bytes of <paramref name="value"/>, for building a packet.</summary>
    public static byte[] Utf16(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return Encoding.Unicode.GetBytes(value);
    }

    /// <summary>Parses a TS_INFO_PACKET that fills <paramref name="source"/>.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out ClientInfoPacket value, out PduError? error)
    {
        value = null;
        if (!ClientInfoLayout.TryScan(source, out var l, out error))
        {
            return false;
        }

        ClientInfoExtended? extended = null;
        if (l.HasExtended)
        {
            extended = new ClientInfoExtended
            {
                ClientAddressFamily = l.ClientAddressFamily,
                ClientAddressBytes = source.Slice(l.ClientAddressOffset, l.ClientAddressLength).ToArray(),
                ClientDirBytes = source.Slice(l.ClientDirOffset, l.ClientDirLength).ToArray(),
                TimeZone = l.TimeZoneOffset < 0 ? (ReadOnlyMemory<byte>?)null : source.Slice(l.TimeZoneOffset, ClientInfoLayout.TimeZoneSize).ToArray(),
                ClientSessionId = l.SessionIdOffset < 0 ? null : BinaryPrimitives.ReadUInt32LittleEndian(source[l.SessionIdOffset..]),
                PerformanceFlags = l.PerformanceFlagsOffset < 0 ? null : BinaryPrimitives.ReadUInt32LittleEndian(source[l.PerformanceFlagsOffset..]),
                AutoReconnectCookie = l.CookieLengthOffset < 0 ? (ReadOnlyMemory<byte>?)null : source.Slice(l.CookieOffset, l.CookieLength).ToArray(),
                Tail = source.Slice(l.TailOffset, l.TailLength).ToArray(),
            };
        }

        value = new ClientInfoPacket
        {
            CodePage = l.CodePage,
            Flags = l.Flags,
            DomainBytes = source.Slice(l.DomainOffset, l.DomainLength).ToArray(),
            UserNameBytes = source.Slice(l.UserNameOffset, l.UserNameLength).ToArray(),
            PasswordBytes = source.Slice(l.PasswordOffset, l.PasswordLength).ToArray(),
            AlternateShellBytes = source.Slice(l.AlternateShellOffset, l.AlternateShellLength).ToArray(),
            WorkingDirBytes = source.Slice(l.WorkingDirOffset, l.WorkingDirLength).ToArray(),
            Extended = extended,
        };
        return true;
    }

    /// <summary>Writes the packet.</summary>
    public void Write(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Size;
        WriteTo(output.GetSpan(size)[..size]);
        output.Advance(size);
    }

    internal void WriteTo(Span<byte> destination)
    {
        ReadOnlySpan<byte> d = DomainBytes.Span, u = UserNameBytes.Span, p = PasswordBytes.Span, a = AlternateShellBytes.Span, w = WorkingDirBytes.Span;
        var writer = new WireWriter(destination);
        writer.WriteU32LE(CodePage);
        writer.WriteU32LE((uint)Flags);
        writer.WriteU16LE(StringLength(d, "Domain"));
        writer.WriteU16LE(StringLength(u, "UserName"));
        writer.WriteU16LE(StringLength(p, "Password"));
        writer.WriteU16LE(StringLength(a, "AlternateShell"));
        writer.WriteU16LE(StringLength(w, "WorkingDir"));
        foreach (var s in (ReadOnlySpan<ReadOnlyMemory<byte>>)[DomainBytes, UserNameBytes, PasswordBytes, AlternateShellBytes, WorkingDirBytes])
        {
            writer.WriteBytes(s.Span);
            writer.WriteU16LE(0);
        }

        Extended?.WriteTo(ref writer);
    }

    private static ushort StringLength(ReadOnlySpan<byte> value, string field)
    {
        if (value.Length > MaxStringBytes || (value.Length & 1) != 0)
        {
            throw new InvalidOperationException($"{field} is {value.Length} bytes; it must be even and at most {MaxStringBytes}");
        }

        return (ushort)value.Length;
    }
}

/// <summary>
/// [MS-RDPBCGR] 2.2.1.11.1.1.1 Extended Info Packet (TS_EXTENDED_INFO_PACKET). The fields after clientDir are
/// optional (each present one implies those before it): null means absent. The time zone
/// (TS_TIME_ZONE_INFORMATION, 172 bytes), the auto-reconnect cookie (ARC_CS_PRIVATE_PACKET, 28 bytes) and everything
/// after it (reserved1, reserved2, cbDynamicDSTTimeZoneKeyName, dynamicDSTTimeZoneKeyName, dynamicDaylightTimeDisabled)
/// are kept as raw bytes.
/// </summary>
public sealed class ClientInfoExtended
{
    /// <summary>AF_INET.</summary>
    public const ushort AddressFamilyInet = 0x0002;

    /// <summary>AF_INET6.</summary>
    public const ushort AddressFamilyInet6 = 0x0017;

    /// <summary>clientAddressFamily.</summary>
    public ushort ClientAddressFamily { get; init; } = AddressFamilyInet;

    /// <summary>clientAddress as UTF-16LE including its NUL terminator (cbClientAddress includes it); empty when cb is 0.</summary>
    public ReadOnlyMemory<byte> ClientAddressBytes { get; init; }

    /// <summary>clientDir as UTF-16LE including its NUL terminator; empty when cb is 0.</summary>
    public ReadOnlyMemory<byte> ClientDirBytes { get; init; }

    /// <summary>clientTimeZone, 172 raw bytes, or null when absent.</summary>
    public ReadOnlyMemory<byte>? TimeZone { get; init; }

    /// <summary>clientSessionId, or null when absent.</summary>
    public uint? ClientSessionId { get; init; }

    /// <summary>performanceFlags, or null when absent.</summary>
    public uint? PerformanceFlags { get; init; }

    /// <summary>autoReconnectCookie (0 or 28 bytes), or null when cbAutoReconnectCookie itself is absent.</summary>
    public ReadOnlyMemory<byte>? AutoReconnectCookie { get; init; }

    /// <summary>The bytes after the cookie (reserved1 … dynamicDaylightTimeDisabled), byte-exact.</summary>
    public ReadOnlyMemory<byte> Tail { get; init; }

    /// <summary>clientAddress.</summary>
    public string ClientAddress => Decode(ClientAddressBytes.Span);

    /// <summary>clientDir.</summary>
    public string ClientDir => Decode(ClientDirBytes.Span);

    /// <summary>Encoded size (only the optional fields up to the first absent one count).</summary>
    public int Size
    {
        get
        {
            var size = 2 /* clientAddressFamily */ + 2 /* cbClientAddress */ + ClientAddressBytes.Length
                + 2 /* cbClientDir */ + ClientDirBytes.Length;
            if (TimeZone is not { } timeZone)
            {
                return size;
            }

            size += timeZone.Length /* clientTimeZone */;
            if (ClientSessionId is null)
            {
                return size;
            }

            size += 4 /* clientSessionId */;
            if (PerformanceFlags is null)
            {
                return size;
            }

            size += 4 /* performanceFlags */;
            if (AutoReconnectCookie is not { } cookie)
            {
                return size;
            }

            return size + 2 /* cbAutoReconnectCookie */ + cookie.Length /* autoReconnectCookie */ + Tail.Length /* reserved1.. */;
        }
    }

    private static string Decode(ReadOnlySpan<byte> withTerminator) =>
        withTerminator.Length < 2 ? string.Empty : Encoding.Unicode.GetString(withTerminator[..^2]);

    internal void WriteTo(ref WireWriter writer)
    {
        writer.WriteU16LE(ClientAddressFamily);
        writer.WriteU16LE(checked((ushort)ClientAddressBytes.Length));
        writer.WriteBytes(ClientAddressBytes.Span);
        writer.WriteU16LE(checked((ushort)ClientDirBytes.Length));
        writer.WriteBytes(ClientDirBytes.Span);
        if (TimeZone is not { } timeZone)
        {
            return;
        }

        writer.WriteBytes(timeZone.Span);
        if (ClientSessionId is not { } sessionId)
        {
            return;
        }

        writer.WriteU32LE(sessionId);
        if (PerformanceFlags is not { } performanceFlags)
        {
            return;
        }

        writer.WriteU32LE(performanceFlags);
        if (AutoReconnectCookie is not { } cookie)
        {
            return;
        }

        writer.WriteU16LE(checked((ushort)cookie.Length));
        writer.WriteBytes(cookie.Span);
        writer.WriteBytes(Tail.Span);
    }
}
