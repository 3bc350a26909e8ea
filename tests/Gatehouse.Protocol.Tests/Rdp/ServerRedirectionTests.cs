using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>Server Redirection PDU recognition in both forms, and refusal of malformed headers.</summary>
public sealed class ServerRedirectionTests
{
    [Fact]
    public void Enhanced_Recognised_AndParsed()
    {
        var bytes = ClientInfoCorpus.EnhancedRedirection;
        Assert.True(ServerRedirection.IsRedirection(bytes));
        Assert.True(ServerRedirection.TryParse(bytes, out var value, out var error), error?.ToString());
        Assert.Equal(new ServerRedirectionHeader(ServerRedirectionForm.EnhancedSecurity, 0x0400, 20, 5, ServerRedirectionFlags.LoadBalanceInfo, false), value);
        Assert.True(ServerRedirection.TryParseEnhanced(bytes, out var again, out _));
        Assert.Equal(value, again);
    }

    [Fact]
    public void Standard_Recognised_AndParsed()
    {
        var bytes = ClientInfoCorpus.StandardRedirection;
        Assert.True(ServerRedirection.IsRedirection(bytes));
        Assert.True(ServerRedirection.TryParse(bytes, out var value, out var error), error?.ToString());
        Assert.Equal(ServerRedirectionForm.StandardSecurity, value.Form);
        Assert.Equal((ushort)30, value.Length);
        Assert.Equal(1u, value.SessionId);
        Assert.Equal(ServerRedirectionFlags.UserName | ServerRedirectionFlags.Domain, value.RedirFlags);
    }

    [Fact]
    public void StandardEncrypted_RecognisedWithoutReading()
    {
        var bytes = Hex.Bytes("08 04 00 00 01 02 03 04 05 06 07 08 aa bb cc dd // SEC_ENCRYPT | SEC_REDIRECTION_PKT, MAC, ciphertext");
        Assert.True(ServerRedirection.IsRedirection(bytes));
        Assert.True(ServerRedirection.TryParse(bytes, out var value, out _));
        Assert.True(value.Encrypted);
    }

    [Theory]
    [InlineData("s2c-017")]
    [InlineData("s2c-010")]
    [InlineData("set-error-info")]
    public void OtherPdus_NotRedirection(string which)
    {
        var userData = which switch
        {
            "s2c-017" => ClientInfoCorpus.CapturedSendDataIndication[14..],
            "s2c-010" => ClientInfoCorpus.CapturedLicenseError[14..],
            _ => ClientInfoCorpus.SetErrorInfo,
        };
        Assert.False(ServerRedirection.IsRedirection(userData));
        Assert.False(ServerRedirection.TryParse(userData, out _, out var error));
        Assert.Equal(PduErrorKind.UnexpectedMessageType, error!.Kind);
    }

    private static byte[] Patch(byte[] source, int offset, params byte[] bytes)
    {
        var copy = (byte[])source.Clone();
        bytes.CopyTo(copy, offset);
        return copy;
    }

    private static byte[] U32(byte[] source, int offset, uint value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    public static TheoryData<string, byte[], PduErrorKind> Cases()
    {
        var e = ClientInfoCorpus.EnhancedRedirection;
        var s = ClientInfoCorpus.StandardRedirection;
        return new TheoryData<string, byte[], PduErrorKind>
        {
            { "empty", [], PduErrorKind.NotEnoughBytes },
            { "enhanced: totalLength too large", Patch(e, 0, 0x1e), PduErrorKind.NotEnoughBytes },
            { "enhanced: totalLength too small", Patch(e, 0, 0x1c), PduErrorKind.InvalidField },
            { "enhanced: Flags not SEC_REDIRECTION_PKT", Patch(e, 8, 0x00, 0x00), PduErrorKind.InvalidField },
            { "enhanced: Length below the fixed fields", Patch(e, 10, 0x0b, 0x00), PduErrorKind.InvalidField },
            { "enhanced: Length past the PDU", Patch(e, 10, 0x20, 0x00), PduErrorKind.NotEnoughBytes },
            { "enhanced: Length 0xffff", Patch(e, 10, 0xff, 0xff), PduErrorKind.NotEnoughBytes },
            { "enhanced: field length past Length", U32(e, 20, 5), PduErrorKind.NotEnoughBytes },
            { "enhanced: field length 0xffffffff", U32(e, 20, 0xFFFFFFFF), PduErrorKind.NotEnoughBytes },
            { "enhanced: field flagged but absent", U32(e, 16, 0x3), PduErrorKind.NotEnoughBytes },
            { "enhanced: too much after the packet", [.. Patch(e, 0, 0x27), .. new byte[10]], PduErrorKind.InvalidField },
            { "enhanced: no room for pad2Octets", Hex.Bytes("06 00 1a 00 ea 03"), PduErrorKind.NotEnoughBytes },
            { "enhanced: packet cut short", Hex.Bytes("0c 00 1a 00 ea 03 00 00 00 04 14 00"), PduErrorKind.NotEnoughBytes },
            { "standard: Length past the PDU", Patch(s, 6, 0x40), PduErrorKind.NotEnoughBytes },
            { "standard: field length past Length", U32(s, 16, 0x100), PduErrorKind.NotEnoughBytes },
            { "standard: second field past Length", U32(s, 26, 9), PduErrorKind.NotEnoughBytes },
            { "standard: Length below the fixed fields", Patch(s, 6, 0x04), PduErrorKind.InvalidField },
            { "standard: cut inside the fixed fields", s[..10], PduErrorKind.NotEnoughBytes },
            { "not a redirection", Hex.Bytes("40 00 00 00 00 00"), PduErrorKind.UnexpectedMessageType },
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_Rejected(string name, byte[] bytes, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<ServerRedirectionHeader>(ServerRedirection.TryParse, bytes, kind);
    }

    [Fact]
    public void FormSpecificParsers_RefuseTheOtherForm()
    {
        Malformed.Rejects<ServerRedirectionHeader>(ServerRedirection.TryParseStandard, ClientInfoCorpus.SetErrorInfo, PduErrorKind.UnexpectedMessageType);
        Malformed.Rejects<ServerRedirectionHeader>(ServerRedirection.TryParseEnhanced, ClientInfoCorpus.SetErrorInfo, PduErrorKind.UnexpectedMessageType);
        Malformed.Rejects<ServerRedirectionHeader>(ServerRedirection.TryParseStandard, [0x00], PduErrorKind.NotEnoughBytes);
    }

    [Fact]
    public void EveryTruncation_Rejected()
    {
        Malformed.RejectsEveryTruncation<ServerRedirectionHeader>(ServerRedirection.TryParseEnhanced, ClientInfoCorpus.EnhancedRedirection);
    }
}
