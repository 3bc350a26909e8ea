using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>Credential injection into the Client Info PDU: exact bytes, length fixes, cookie removal, refusals, no allocation.</summary>
public sealed class ClientInfoRewriterTests
{
    private static byte[] Rewrite(byte[] frame, string domain, string user, string password, bool clearPin = true)
    {
        var credentials = new ClientInfoCredentials(domain, user, password, clearPin);
        Assert.True(ClientInfoRewriter.TryGetRewrittenSize(frame, credentials, out var size, out var error), error?.ToString());
        var buffer = new ArrayBufferWriter<byte>();
        Assert.True(ClientInfoRewriter.TryRewrite(frame, credentials, buffer, out error), error?.ToString());
        Assert.Equal(size, buffer.WrittenCount);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void CapturedFrame_RewrittenToGhAdmin_ExactBytes()
    {
        var original = ClientInfoCorpus.CapturedClientInfo;
        var rewritten = Rewrite(original, string.Empty, "gh-admin", "Sw0rdfish!");
        var expectedHead = Hex.Bytes("""
            03 00 01 63                   // TPKT length 355 (373 - 14 + 2 - 6)
            02 f0 80                      // X.224 Data
            64 00 07 03 eb 70 81 54       // Send Data Request, initiator 1008, channel 1003, length 340 (2-byte form)
            40 00 00 00                   // security header SEC_INFO_PKT, unchanged
            00 00 00 00                   // CodePage
            fb 47 0b 00                   // flags (INFO_AUTOLOGON already set)
            00 00 10 00 14 00 00 00 00 00 // cbDomain 0, cbUserName 16, cbPassword 20, cbAlternateShell 0, cbWorkingDir 0
            00 00                         // Domain ""
            67 00 68 00 2d 00 61 00 64 00 6d 00 69 00 6e 00 00 00          // UserName "gh-admin"
            53 00 77 00 30 00 72 00 64 00 66 00 69 00 73 00 68 00 21 00 00 00 // Password "Sw0rdfish!"
            """);
        Assert.Equal(355, rewritten.Length);
        Assert.Equal(Hex.String(expectedHead), Hex.String(rewritten.AsSpan(0, expectedHead.Length)));

        // Everything after the password is the original, byte for byte (the cookie length was already 0).
        const int OriginalAfterPassword = 19 + 18 + 16 + 16 + 28;
        Assert.Equal(original[OriginalAfterPassword..], rewritten[expectedHead.Length..]);

        Assert.True(ClientInfoPdu.TryParse(rewritten, out var pdu, out var error), error?.ToString());
        Assert.Equal(string.Empty, pdu.Packet.Domain);
        Assert.Equal("gh-admin", pdu.Packet.UserName);
        Assert.Equal("Sw0rdfish!", pdu.Packet.Password);
        Assert.Equal("127.0.0.1", pdu.Packet.Extended!.ClientAddress);
    }

    [Fact]
    public void Rewrite_SetsAutoLogon_ClearsSmartCardPin()
    {
        var frame = (byte[])ClientInfoCorpus.MinimalClientInfo.Clone();

        // flags = INFO_UNICODE | INFO_PASSWORD_IS_SC_PIN | INFO_MOUSE, no INFO_AUTOLOGON.
        BitConverter.TryWriteBytes(frame.AsSpan(18 + 4), 0x0004_0011u);
        var rewritten = Rewrite(frame, "D", "u", "p");
        Assert.True(ClientInfoPdu.TryParse(rewritten, out var pdu, out _));
        Assert.Equal(ClientInfoFlags.Unicode | ClientInfoFlags.Mouse | ClientInfoFlags.AutoLogon, pdu.Packet.Flags);

        var kept = Rewrite(frame, "D", "u", "p", clearPin: false);
        Assert.True(ClientInfoPdu.TryParse(kept, out pdu, out _));
        Assert.True(pdu.Packet.Flags.HasFlag(ClientInfoFlags.PasswordIsSmartCardPin | ClientInfoFlags.AutoLogon));
    }

    [Fact]
    public void Rewrite_DropsTheCookie_KeepsTheTail()
    {
        var frame = ClientInfoCorpus.ClientInfoWithCookie;
        Assert.True(ClientInfoPdu.TryParse(frame, out var before, out _));
        var rewritten = Rewrite(frame, "CONTOSO", "rdpuser", "Rdp-Pass-2026");
        Assert.Equal(frame.Length - 28, rewritten.Length);
        Assert.True(ClientInfoPdu.TryParse(rewritten, out var after, out var error), error?.ToString());
        Assert.Equal(0, after.Packet.Extended!.AutoReconnectCookie!.Value.Length);
        Assert.Equal(before.Packet.Extended!.Tail.ToArray(), after.Packet.Extended.Tail.ToArray());
        Assert.Equal(before.Packet.Extended.TimeZone!.Value.ToArray(), after.Packet.Extended.TimeZone!.Value.ToArray());
        Assert.Equal(before.Packet.Extended.PerformanceFlags, after.Packet.Extended.PerformanceFlags);

        // Same credentials, so the frame differs from the original only by the cookie and the lengths.
        Assert.Equal(frame[^8..], rewritten[^8..]);
    }

    [Fact]
    public void Rewrite_ShortToLongPerLength_Crosses0x80()
    {
        // The minimal frame has 36 bytes of user data and a 1-byte PER length.
        var frame = ClientInfoCorpus.MinimalClientInfo;
        Assert.Equal(0x24, frame[13]);
        var user = new string('u', 60);
        var rewritten = Rewrite(frame, "dom", user, "pw");
        Assert.True(ClientInfoPdu.TryParse(rewritten, out var pdu, out var error), error?.ToString());
        Assert.Equal(user, pdu.Packet.UserName);
        Assert.Equal(0x80, rewritten[13] & 0xC0);
        var userData = ((rewritten[13] & 0x3F) << 8) | rewritten[14];
        Assert.Equal(rewritten.Length - 15, userData);
        Assert.True(userData > 0x7F);
        Assert.Equal(rewritten.Length, (rewritten[2] << 8) | rewritten[3]);
    }

    [Fact]
    public void Rewrite_LongToShortPerLength_Crosses0x7F()
    {
        var frame = ClientInfoCorpus.MinimalClientInfo;
        var grown = Rewrite(frame, "dom", new string('u', 60), "pw");
        var shrunk = Rewrite(grown, string.Empty, "u", string.Empty);
        Assert.Equal(0x70, shrunk[12]);
        Assert.True(shrunk[13] < 0x80);
        Assert.Equal(shrunk.Length - 14, shrunk[13]);
        Assert.True(ClientInfoPdu.TryParse(shrunk, out var pdu, out _));
        Assert.Equal("u", pdu.Packet.UserName);
    }

    [Fact]
    public void Rewrite_MaximumValues_Accepted()
    {
        var max = new string('x', ClientInfoRewriter.MaxValueChars);
        var rewritten = Rewrite(ClientInfoCorpus.CapturedClientInfo, max, max, max);
        Assert.True(ClientInfoPdu.TryParse(rewritten, out var pdu, out _));
        Assert.Equal(max, pdu.Packet.Password);
    }

    [Fact]
    public void Rewrite_IntoSpan_WritesTheSameBytes()
    {
        var frame = ClientInfoCorpus.CapturedClientInfo;
        var expected = Rewrite(frame, "a", "b", "c");
        var destination = new byte[1024];
        Assert.True(ClientInfoRewriter.TryRewrite(frame, new ClientInfoCredentials("a", "b", "c"), destination, out var written, out _));
        Assert.Equal(expected, destination[..written]);
        Assert.False(ClientInfoRewriter.TryRewrite(frame, new ClientInfoCredentials("a", "b", "c"), new byte[10], out written, out var error));
        Assert.Equal(0, written);
        Assert.Equal(PduErrorKind.TooLarge, error!.Kind);
        Assert.False(ClientInfoRewriter.TryRewrite(frame.AsSpan(0, 100), new ClientInfoCredentials("a", "b", "c"), destination, out written, out error));
        Assert.Equal(PduErrorKind.NotEnoughBytes, error!.Kind);
    }

    public static TheoryData<string, string, string, string, PduErrorKind> RefusedCredentials() => new()
    {
        { "domain 256 chars", new string('d', 256), "u", "p", PduErrorKind.TooLarge },
        { "user 256 chars", "d", new string('u', 256), "p", PduErrorKind.TooLarge },
        { "password 1000 chars", "d", "u", new string('p', 1000), PduErrorKind.TooLarge },
        { "NUL in user name", "d", "ad\0min", "p", PduErrorKind.InvalidField },
        { "NUL in domain", "d\0", "u", "p", PduErrorKind.InvalidField },
        { "NUL in password", "d", "u", "\0", PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(RefusedCredentials))]
    public void Rewrite_BadCredentials_RefusedAndNothingWritten(string name, string domain, string user, string password, PduErrorKind kind)
    {
        Assert.NotNull(name);
        var buffer = new ArrayBufferWriter<byte>();
        Assert.False(ClientInfoRewriter.TryRewrite(ClientInfoCorpus.CapturedClientInfo, new ClientInfoCredentials(domain, user, password), buffer, out var error));
        Assert.Equal(kind, error!.Kind);
        Assert.Equal(0, buffer.WrittenCount);
        Assert.False(ClientInfoRewriter.TryGetRewrittenSize(ClientInfoCorpus.CapturedClientInfo, new ClientInfoCredentials(domain, user, password), out var size, out _));
        Assert.Equal(0, size);
    }

    [Theory]
    [MemberData(nameof(ClientInfoMalformedTests.FrameCases), MemberType = typeof(ClientInfoMalformedTests))]
    public void Rewrite_MalformedFrame_RefusedAndNothingWritten(string name, byte[] frame, PduErrorKind kind)
    {
        Assert.NotNull(name);
        var buffer = new ArrayBufferWriter<byte>();
        Assert.False(ClientInfoRewriter.TryRewrite(frame, new ClientInfoCredentials("d", "u", "p"), buffer, out var error));
        Assert.Equal(kind, error!.Kind);
        Assert.Equal(0, buffer.WrittenCount);
    }

    [Fact]
    public void Rewrite_IntoPresizedBuffer_AllocatesNothing()
    {
        var frame = ClientInfoCorpus.ClientInfoWithCookie;
        var buffer = new ArrayBufferWriter<byte>(4096);
        const string Domain = "CONTOSO";
        const string User = "gh-admin";
        const string Password = "Sw0rdfish!";

        // Warm once (JIT, static initialisation).
        Assert.True(ClientInfoRewriter.TryRewrite(frame, new ClientInfoCredentials(Domain, User, Password), buffer, out _));
        buffer.ResetWrittenCount();

        var before = GC.GetAllocatedBytesForCurrentThread();
        var ok = ClientInfoRewriter.TryRewrite(frame, new ClientInfoCredentials(Domain, User, Password), buffer, out var error);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(ok, error?.ToString());
        Assert.Equal(0, allocated);
        Assert.True(ClientInfoPdu.TryParse(buffer.WrittenSpan, out var pdu, out _));
        Assert.Equal(User, pdu.Packet.UserName);
    }
}
