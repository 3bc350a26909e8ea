using System.Buffers.Binary;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.Ntlm;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.Ntlm;

public sealed class NtlmMalformedTests
{
    [Fact]
    public void Negotiate_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<NtlmNegotiateMessage>(NtlmNegotiateMessage.TryParse, NtlmCorpus.Negotiate);

    [Fact]
    public void Challenge_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<NtlmChallengeMessage>(NtlmChallengeMessage.TryParse, NtlmCorpus.Challenge);

    [Fact]
    public void Authenticate_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<NtlmAuthenticateMessage>(NtlmAuthenticateMessage.TryParse, NtlmCorpus.Authenticate);

    [Fact]
    public void AvPairs_EveryTruncation_IsRefused() =>
        Malformed.RejectsEveryTruncation<AvPairs>(AvPairs.TryParse, NtlmCorpus.TargetInfo);

    public static TheoryData<string, byte[], PduErrorKind> AuthenticateCases()
    {
        var data = new TheoryData<string, byte[], PduErrorKind>
        {
            { "signature", Patch(NtlmCorpus.Authenticate, 0, "4e544c4d53535001"), PduErrorKind.InvalidField },
            { "type 2", PatchU32(NtlmCorpus.Authenticate, 8, 2), PduErrorKind.UnexpectedMessageType },
            { "type 0xffffffff", PatchU32(NtlmCorpus.Authenticate, 8, uint.MaxValue), PduErrorKind.UnexpectedMessageType },
            { "OEM strings", PatchU32(NtlmCorpus.Authenticate, 60, 0x00088202), PduErrorKind.Unsupported },
            { "session key length 5", PatchBuffer(NtlmCorpus.Authenticate, 52, 5, 0x58), PduErrorKind.InvalidField },
            { "odd user length", PatchBuffer(NtlmCorpus.Authenticate, 36, 7, 0x106), PduErrorKind.InvalidField },
            { "odd domain length", PatchBuffer(NtlmCorpus.Authenticate, 28, 11, 0xfa), PduErrorKind.InvalidField },
            { "odd workstation length", PatchBuffer(NtlmCorpus.Authenticate, 44, 15, 0x10e), PduErrorKind.InvalidField },
            { "too large", [.. NtlmCorpus.Authenticate, .. new byte[NtlmMessage.MaxMessageSize]], PduErrorKind.TooLarge },
        };

        // Each of the six payload fields: past the end, offset 0xFFFFFFFF, into the header, length 0xFFFF.
        var fields = new[] { ("LM", 12), ("NT", 20), ("domain", 28), ("user", 36), ("workstation", 44), ("key", 52) };
        foreach (var (name, at) in fields)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(NtlmCorpus.Authenticate.AsSpan(at));
            var nonEmpty = Math.Max((int)length, 16);
            data.Add($"{name} past the end", PatchBuffer(NtlmCorpus.Authenticate, at, nonEmpty, (uint)NtlmCorpus.Authenticate.Length - 2), PduErrorKind.InvalidField);
            data.Add($"{name} offset 4 GiB", PatchBuffer(NtlmCorpus.Authenticate, at, nonEmpty, uint.MaxValue), PduErrorKind.InvalidField);
            data.Add($"{name} into the header", PatchBuffer(NtlmCorpus.Authenticate, at, nonEmpty, 8), PduErrorKind.InvalidField);
            data.Add($"{name} length 0xFFFF", PatchBuffer(NtlmCorpus.Authenticate, at, 0xFFFF, 0x58), PduErrorKind.InvalidField);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AuthenticateCases))]
    public void Authenticate_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<NtlmAuthenticateMessage>(NtlmAuthenticateMessage.TryParse, input, kind);
    }

    public static TheoryData<string, byte[], PduErrorKind> ChallengeCases() => new()
    {
        { "type 3", PatchU32(NtlmCorpus.Challenge, 8, 3), PduErrorKind.UnexpectedMessageType },
        { "target name past the end", PatchBuffer(NtlmCorpus.Challenge, 12, 12, 0x80), PduErrorKind.InvalidField },
        { "target info into the header", PatchBuffer(NtlmCorpus.Challenge, 40, 0x24, 0x10), PduErrorKind.InvalidField },
        { "target info length 0xFFFF", PatchBuffer(NtlmCorpus.Challenge, 40, 0xFFFF, 0x44), PduErrorKind.InvalidField },
        { "target info offset 4 GiB", PatchBuffer(NtlmCorpus.Challenge, 40, 0x24, uint.MaxValue), PduErrorKind.InvalidField },
        { "target info without EOL", PatchBuffer(NtlmCorpus.Challenge, 40, 0x20, 0x44), PduErrorKind.NotEnoughBytes },
        { "pair length past the list", Patch(NtlmCorpus.Challenge, 0x44 + 2, "ff00"), PduErrorKind.NotEnoughBytes },
        { "EOL with a length", Patch(NtlmCorpus.Challenge, 0x44 + 32 + 2, "0400"), PduErrorKind.InvalidField },
    };

    [Theory]
    [MemberData(nameof(ChallengeCases))]
    public void Challenge_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<NtlmChallengeMessage>(NtlmChallengeMessage.TryParse, input, kind);
    }

    public static TheoryData<string, byte[], PduErrorKind> AvPairCases()
    {
        var tooMany = new List<byte>();
        for (var i = 0; i <= AvPairs.MaxPairs; i++)
        {
            tooMany.AddRange(new byte[] { 1, 0, 0, 0 });
        }

        tooMany.AddRange(new byte[4]);
        return new TheoryData<string, byte[], PduErrorKind>
        {
            { "empty", [], PduErrorKind.NotEnoughBytes },
            { "EOL with length 4", Convert.FromHexString("0000040000000000"), PduErrorKind.InvalidField },
            { "bytes after EOL", [.. NtlmCorpus.TargetInfo, 0x00], PduErrorKind.InvalidField },
            { "too many pairs", [.. tooMany], PduErrorKind.TooLarge },
            { "value longer than the list", Convert.FromHexString("0100ffff41004100"), PduErrorKind.NotEnoughBytes },
        };
    }

    [Theory]
    [MemberData(nameof(AvPairCases))]
    public void AvPairs_Malformed_IsRefused(string name, byte[] input, PduErrorKind kind)
    {
        Assert.NotNull(name);
        Malformed.Rejects<AvPairs>(AvPairs.TryParse, input, kind);
    }

    [Theory]
    [InlineData("type 2", 8, "02000000")]
    [InlineData("domain past the end", 16, "0400040040000000")]
    [InlineData("workstation into the header", 24, "0400040004000000")]
    public void Negotiate_Malformed_IsRefused(string name, int offset, string patch)
    {
        Assert.NotNull(name);
        Malformed.Rejects<NtlmNegotiateMessage>(NtlmNegotiateMessage.TryParse, Patch(NtlmCorpus.Negotiate, offset, patch));
    }

    private static byte[] Patch(byte[] source, int offset, string hex)
    {
        var copy = (byte[])source.Clone();
        Convert.FromHexString(hex).CopyTo(copy, offset);
        return copy;
    }

    private static byte[] PatchU32(byte[] source, int offset, uint value)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    private static byte[] PatchBuffer(byte[] source, int field, int length, uint offset)
    {
        var copy = (byte[])source.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(field), (ushort)length);
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(field + 2), (ushort)length);
        BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(field + 4), offset);
        return copy;
    }
}
