using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.RdsAad;

public sealed class RdsAadTests
{
    [Fact]
    public void Thumbprint_Rfc7638Example() =>
        Assert.Equal(RdsAadCorpus.ExampleThumbprint, JwkThumbprint.ComputeRsa("AQAB", RdsAadCorpus.ExampleModulus));

    [Theory]
    [InlineData("", "AQAB")]
    [InlineData("AQAB", "")]
    [InlineData("AQ\"AB", "AQAB")]
    public void Thumbprint_NotBase64Url_Throws(string e, string n) =>
        Assert.Throws<ArgumentException>(() => JwkThumbprint.ComputeRsa(e, n));

    [Fact]
    public void ServerNonce_ParsesAndWritesByteExact()
    {
        Assert.True(RdsAadServerNonce.TryParse(RdsAadCorpus.ServerNonce, out var nonce, out var error), error?.ToString());
        Assert.Equal("AQIDBAUGBwgJCgsMDQ4PEA", nonce.Nonce);
        Assert.Equal(RdsAadCorpus.ServerNonce, Write(nonce.Write));
        Assert.True(RdsAadServerNonce.TryParse("""{"other":1,"ts_nonce":"n"}"""u8, out var withOther, out _));
        Assert.Equal("n", withOther.Nonce);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("quote\"")]
    [InlineData("back\\slash")]
    public void ServerNonce_UnsafeValue_IsNotWritten(string value)
    {
        Assert.False(RdsAadServerNonce.IsSafe(value));
        Assert.Throws<InvalidOperationException>(() => new RdsAadServerNonce(value).Write(new ArrayBufferWriter<byte>()));
    }

    [Fact]
    public void AuthRequest_FreeRdpShape_ParsesEveryField()
    {
        Assert.True(RdsAadAuthRequest.TryParse(RdsAadCorpus.AuthRequest, out var request, out var error), error?.ToString());
        var a = request.Assertion;
        Assert.Equal("RS256", a.Algorithm);
        Assert.Equal(RdsAadCorpus.B64($$"""{"kid":"{{RdsAadCorpus.ExampleThumbprint}}"}"""), a.KeyId);
        Assert.Null(a.Type);
        Assert.Equal(1795346132, a.Timestamp);
        Assert.Equal("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln", a.AccessToken);
        Assert.Equal("vm1", a.HostLabel);
        Assert.Equal("AQIDBAUGBwgJCgsMDQ4PEA", a.Nonce);
        Assert.Equal("RSA", a.KeyType);
        Assert.Equal("AQAB", a.Exponent);
        Assert.Equal(RdsAadCorpus.ExampleThumbprint, a.Thumbprint);
        Assert.Equal("eyJ0eXAiOiJzcnZfY2hhbGxlbmdlIn0.e30.c2ln", a.ClientClaims["aad_nonce"]);
        Assert.Equal(Encoding.ASCII.GetBytes(RdsAadCorpus.Assertion[..RdsAadCorpus.Assertion.LastIndexOf('.')]), a.SigningInput.ToArray());
        Assert.Equal("signature"u8.ToArray(), a.Signature.ToArray());
        Assert.Equal(RdsAadCorpus.AuthRequest, Write(request.Write));
    }

    [Fact]
    public void AuthRequest_TimestampAsNumberAndUpperCaseUrl_AreAccepted()
    {
        var payload = RdsAadCorpus.Payload.Replace("\"ts\":\"1795346132\"", "\"ts\":1795346132", StringComparison.Ordinal)
            .Replace("ms-device-service://termsrv.wvd.microsoft.com/name/vm1", "MS-DEVICE-SERVICE://termsrv.wvd.microsoft.com/name/VM1", StringComparison.Ordinal);
        Assert.True(RdsAadAuthRequest.TryParse(Request(RdsAadCorpus.Header, payload), out var request, out var error), error?.ToString());
        Assert.Equal(1795346132, request.Assertion.Timestamp);
        Assert.Equal("VM1", request.Assertion.HostLabel);
    }

    [Fact]
    public void AuthRequest_OtherUrl_HasNoHostLabel()
    {
        var payload = RdsAadCorpus.Payload.Replace("ms-device-service://termsrv.wvd.microsoft.com/name/vm1", "https://vm1", StringComparison.Ordinal);
        Assert.True(RdsAadAuthRequest.TryParse(Request(RdsAadCorpus.Header, payload), out var request, out _));
        Assert.Null(request.Assertion.HostLabel);
    }

    [Fact]
    public void AuthRequest_WithoutClientClaims_HasNone()
    {
        var payload = RdsAadCorpus.Payload[..RdsAadCorpus.Payload.IndexOf(",\"client_claims\"", StringComparison.Ordinal)] + "}";
        Assert.True(RdsAadAuthRequest.TryParse(Request(RdsAadCorpus.Header, payload), out var request, out var error), error?.ToString());
        Assert.Empty(request.Assertion.ClientClaims);
    }

    [Fact]
    public void AuthRequest_RealRs256Signature_VerifiesWithTheEmbeddedKey()
    {
        // Built the way FreeRDP's aad.c does: fresh RSA-2048 key, header with the wrapped thumbprint, RS256 over h.p.
        using var key = RSA.Create(2048);
        var parameters = key.ExportParameters(false);
        var n = RdsAadCorpus.B64Bytes(parameters.Modulus!);
        var e = RdsAadCorpus.B64Bytes(parameters.Exponent!);
        var thumbprint = JwkThumbprint.ComputeRsa(e, n);
        var header = $$"""{"alg":"RS256","kid":"{{RdsAadCorpus.B64($$"""{"kid":"{{thumbprint}}"}""")}}"}""";
        var payload = $$$"""{"ts":"1795346132","at":"x.y.z","u":"ms-device-service://termsrv.wvd.microsoft.com/name/vm1","nonce":"n1","cnf":{"jwk":{"kty":"RSA","e":"{{{e}}}","n":"{{{n}}}"}},"client_claims":"{\"aad_nonce\":\"a1\"}"}""";
        var signingInput = $"{RdsAadCorpus.B64(header)}.{RdsAadCorpus.B64(payload)}";
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var json = RdsAadCorpus.Message($$"""{"rdp_assertion":"{{signingInput}}.{{RdsAadCorpus.B64Bytes(signature)}}"}""");

        Assert.True(RdsAadAuthRequest.TryParse(json, out var request, out var error), error?.ToString());
        var a = request.Assertion;
        Assert.Equal(thumbprint, a.Thumbprint);
        using var verifier = RSA.Create(new RSAParameters { Modulus = parameters.Modulus, Exponent = parameters.Exponent });
        Assert.True(verifier.VerifyData(a.SigningInput, a.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        var tampered = a.SigningInput.ToArray();
        tampered[^1] ^= 1;
        Assert.False(verifier.VerifyData(tampered, a.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    [Theory]
    [InlineData(0, "S_OK (0x00000000)")]
    [InlineData(RdsAadAuthResult.AccessDenied, "E_ACCESSDENIED (0x80070005)")]
    [InlineData(RdsAadAuthResult.InvalidToken, "SEC_E_INVALID_TOKEN (0x80090308)")]
    [InlineData(RdsAadAuthResult.LogonFailure, "STATUS_LOGON_FAILURE (0xC000006D)")]
    [InlineData(RdsAadAuthResult.AccountDisabled, "STATUS_ACCOUNT_DISABLED (0xC0000072)")]
    [InlineData(RdsAadAuthResult.PasswordExpired, "STATUS_PASSWORD_EXPIRED (0xC0000071)")]
    [InlineData(RdsAadAuthResult.NoLogonServers, "STATUS_NO_LOGON_SERVERS (0xC000005E)")]
    [InlineData(RdsAadAuthResult.InvalidLogonHours, "STATUS_INVALID_LOGON_HOURS (0xC000006F)")]
    [InlineData(RdsAadAuthResult.InvalidWorkstation, "STATUS_INVALID_WORKSTATION (0xC0000070)")]
    [InlineData(42, "0x0000002A")]
    public void AuthResult_IsWrittenAsAnUnsignedNumber_AndRoundTrips(int code, string name)
    {
        var result = new RdsAadAuthResult(code);
        var bytes = Write(result.Write);
        Assert.Equal(RdsAadCorpus.Message($$"""{"authentication_result":{{unchecked((uint)code)}}}"""), bytes);
        Assert.True(RdsAadAuthResult.TryParse(bytes, out var parsed, out _));
        Assert.Equal(code, parsed.Result);
        Assert.Equal(name, parsed.ToString());

        // Windows-style negative decimals parse to the same code.
        Assert.True(RdsAadAuthResult.TryParse(RdsAadCorpus.Message($$"""{"authentication_result":{{code}}}"""), out var signed, out _));
        Assert.Equal(code, signed.Result);
    }

    [Fact]
    public void AuthResult_FreeRdpsVerifiedForm_IsTheUnsignedDecimal()
    {
        // freerdp-aad-client.md 2c: "2148074248 for 0x80090308", verified against FreeRDP 3.10.3.
        var bytes = Write(new RdsAadAuthResult(RdsAadAuthResult.InvalidToken).Write);
        Assert.Equal(RdsAadCorpus.Message("""{"authentication_result":2148074248}"""), bytes);
    }

    [Fact]
    public void AuthResult_CorpusValues()
    {
        Assert.True(RdsAadAuthResult.TryParse(RdsAadCorpus.ResultAccessDenied, out var denied, out _));
        Assert.Equal(RdsAadAuthResult.AccessDenied, denied.Result);
        Assert.True(RdsAadAuthResult.TryParse(RdsAadCorpus.ResultSuccess, out var ok, out _));
        Assert.Equal(RdsAadAuthResult.Success, ok.Result);
    }

    [Fact]
    public void Framing_SplitAcrossSegments_WaitsForTheNulAndLeavesTheRest()
    {
        byte[] stream = [.. RdsAadCorpus.ServerNonce, 0x03, 0x00];
        for (var split = 1; split < stream.Length; split++)
        {
            var reader = new SequenceReader<byte>(Malformed.Segmented(stream, split));
            Assert.Equal(OperationStatus.Done, RdsAadFraming.TryReadMessage(ref reader, RdsAadFraming.DefaultMaxMessageBytes, out var json, out _));
            Assert.Equal(RdsAadCorpus.ServerNonce[..^1], json.ToArray());
            Assert.Equal(2, reader.Remaining);
        }

        var partial = new SequenceReader<byte>(new ReadOnlySequence<byte>(RdsAadCorpus.ServerNonce[..^1]));
        Assert.Equal(OperationStatus.NeedMoreData, RdsAadFraming.TryReadMessage(ref partial, RdsAadFraming.DefaultMaxMessageBytes, out _, out _));
        Assert.Equal(0, partial.Consumed);
    }

    [Fact]
    public void Framing_NoNulWithinTheCap_IsTooLarge()
    {
        var flood = new SequenceReader<byte>(new ReadOnlySequence<byte>(Enumerable.Repeat((byte)'{', 101).ToArray()));
        Assert.Equal(OperationStatus.InvalidData, RdsAadFraming.TryReadMessage(ref flood, 100, out _, out var error));
        Assert.Equal(PduErrorKind.TooLarge, error!.Kind);

        byte[] longMessage = [.. Enumerable.Repeat((byte)'a', 101), 0];
        var late = new SequenceReader<byte>(new ReadOnlySequence<byte>(longMessage));
        Assert.Equal(OperationStatus.InvalidData, RdsAadFraming.TryReadMessage(ref late, 100, out _, out error));
        Assert.Equal(0, late.Consumed);
        Assert.Equal(PduErrorKind.TooLarge, error!.Kind);
    }

    [Fact]
    public void Framing_Span()
    {
        byte[] two = [.. RdsAadCorpus.ResultSuccess, .. RdsAadCorpus.ServerNonce];
        Assert.True(RdsAadFraming.TryReadMessage(two, 1000, out var consumed, out var json, out _));
        Assert.Equal(RdsAadCorpus.ResultSuccess.Length, consumed);
        Assert.Equal(RdsAadCorpus.ResultSuccess[..^1], json.ToArray());
        Assert.False(RdsAadFraming.TryReadMessage("{}"u8, 1000, out _, out _, out var needMore));
        Assert.Equal(PduErrorKind.NotEnoughBytes, needMore!.Kind);
        Assert.False(RdsAadFraming.TryReadMessage(new byte[20], 10, out _, out _, out var tooLarge) && false);
        Assert.False(RdsAadFraming.TryReadMessage(Enumerable.Repeat((byte)'a', 20).ToArray(), 10, out _, out _, out tooLarge));
        Assert.Equal(PduErrorKind.TooLarge, tooLarge!.Kind);
        Assert.False(RdsAadFraming.TryReadMessage([.. Enumerable.Repeat((byte)'a', 20), 0], 10, out _, out _, out tooLarge));
        Assert.Equal(PduErrorKind.TooLarge, tooLarge!.Kind);
    }

    internal static byte[] Request(string header, string payload, string signature = "signature") =>
        RdsAadCorpus.Message($$"""{"rdp_assertion":"{{RdsAadCorpus.B64(header)}}.{{RdsAadCorpus.B64(payload)}}.{{RdsAadCorpus.B64(signature)}}"}""");

    private static byte[] Write(Action<IBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
