using System.Buffers;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Tests.Rdp;

/// <summary>The refusal frames after a Client Info PDU: License Error (valid client), Set Error Info, Disconnect Provider Ultimatum.</summary>
public sealed class ServerRefusalTests
{
    [Fact]
    public void LicenseValidClient_IsTheSpecPdu_AndParsesBack()
    {
        var output = new ArrayBufferWriter<byte>();
        ServerRefusal.WriteLicenseValidClient(output);

        // [MS-RDPBCGR] 2.2.1.12: TPKT, X.224 Data, SDin from 1002 on 1003, SEC_LICENSE_PKT, ERROR_ALERT v3 of 16 bytes,
        // STATUS_VALID_CLIENT, ST_NO_TRANSITION, an empty BB_ERROR_BLOB.
        Assert.Equal(
            Convert.FromHexString("03000022" + "02f080" + "68" + "0001" + "03eb" + "70" + "14" + "80000000" + "ff031000" + "07000000" + "02000000" + "04000000"),
            output.WrittenSpan.ToArray());
        Assert.True(X224Data.TryUnwrapFrame(output.WrittenSpan, out var mcs, out _));
        Assert.True(McsSendData.TryParseIndication(mcs, out var header, out var userData, out _));
        Assert.Equal(ServerRefusal.ServerChannelId, header.Initiator);
        Assert.Equal(ServerRefusal.IoChannelId, header.ChannelId);
        Assert.True(ServerRefusal.TryParseLicenseError(userData, out var code, out var transition, out var error), error?.ToString());
        Assert.Equal(ServerRefusal.StatusValidClient, code);
        Assert.Equal(ServerRefusal.NoTransition, transition);
    }

    [Fact]
    public void XrdpsCapturedLicenseError_ParsesAsValidClient()
    {
        var capture = File.ReadAllBytes(Path.Combine(Gatehouse.Fuzz.RepoPaths.FindRoot()!, "testdata", "captures", "freerdp3-xrdp-tls", "s2c-010-license-error.bin"));
        Assert.True(X224Data.TryUnwrapFrame(capture, out var mcs, out _));
        Assert.True(McsSendData.TryParseIndication(mcs, out _, out var userData, out _));
        Assert.True(ServerRefusal.TryParseLicenseError(userData, out var code, out var transition, out var error), error?.ToString());
        Assert.Equal(ServerRefusal.StatusValidClient, code);
        Assert.Equal(ServerRefusal.NoTransition, transition);
    }

    [Theory]
    [InlineData(ErrorInfoCode.ServerDeniedConnection, true)]
    [InlineData(ErrorInfoCode.ServerInsufficientPrivileges, true)]
    [InlineData(ErrorInfoCode.ServerDeniedConnection, false)]
    public void Write_GivesLicenseThenErrorInfoThenUltimatum(ErrorInfoCode code, bool errorInfo)
    {
        var output = new ArrayBufferWriter<byte>();
        ServerRefusal.Write(output, code, errorInfo);
        var bytes = output.WrittenSpan.ToArray();
        var frames = new List<byte[]>();
        for (var offset = 0; offset < bytes.Length;)
        {
            var length = (bytes[offset + 2] << 8) | bytes[offset + 3];
            frames.Add(bytes[offset..(offset + length)]);
            offset += length;
        }

        Assert.Equal(errorInfo ? 3 : 2, frames.Count);
        if (errorInfo)
        {
            Assert.True(X224Data.TryUnwrapFrame(frames[1], out var mcs, out _));
            Assert.True(McsSendData.TryParseIndication(mcs, out _, out var userData, out _));
            Assert.True(SetErrorInfoPdu.TryParse(userData, out var pdu, out var error), error?.ToString());
            Assert.Equal(code, pdu.ErrorInfo);
            Assert.Equal(0, pdu.Header.ShareControl.PduSource);
        }

        Assert.Equal(Convert.FromHexString("03000009" + "02f080" + "2080"), frames[^1]);
        Assert.True(X224Data.TryUnwrapFrame(frames[^1], out var ultimatum, out _));
        Assert.True(DisconnectProviderUltimatum.TryParse(ultimatum, out var parsed, out _));
        Assert.Equal(McsDisconnectReason.ProviderInitiated, parsed.Reason);
    }

    [Theory]
    [InlineData("short", "80000000ff03")]
    [InlineData("no SEC_LICENSE_PKT", "00000000ff031000070000000200000004000000")]
    [InlineData("not ERROR_ALERT", "8000000001031000070000000200000004000000")]
    [InlineData("wMsgSize disagrees", "80000000ff031400070000000200000004000000")]
    public void TryParseLicenseError_RefusesMalformed(string name, string hex)
    {
        Assert.NotNull(name);
        var bytes = Convert.FromHexString(hex);
        Assert.False(ServerRefusal.TryParseLicenseError(bytes, out _, out _, out var error));
        Assert.NotNull(error);
    }
}
