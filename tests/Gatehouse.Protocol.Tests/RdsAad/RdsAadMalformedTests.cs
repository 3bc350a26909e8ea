using System.Text;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.Tests.Support;

namespace Gatehouse.Protocol.Tests.RdsAad;

public sealed class RdsAadMalformedTests
{
    public static TheoryData<string, string> MalformedNonces() => new()
    {
        { "empty", "" },
        { "array", """["ts_nonce"]""" },
        { "string", "\"ts_nonce\"" },
        { "number", "1" },
        { "null", "null" },
        { "missing member", """{"nonce":"x"}""" },
        { "number value", """{"ts_nonce":1}""" },
        { "object value", """{"ts_nonce":{}}""" },
        { "empty value", """{"ts_nonce":""}""" },
        { "duplicate member", """{"ts_nonce":"a","ts_nonce":"b"}""" },
        { "wrong case (3.18+ is case-sensitive)", """{"TS_NONCE":"a"}""" },
        { "trailing garbage", """{"ts_nonce":"a"}x""" },
        { "two objects", """{"ts_nonce":"a"}{}""" },
        { "unterminated string", """{"ts_nonce":"a}""" },
        { "unterminated object", "{\"ts_nonce\":\"a\"" },
        { "comment", """{/*c*/"ts_nonce":"a"}""" },
        { "single quotes", "{'ts_nonce':'a'}" },
        { "too deep", """{"ts_nonce":"a","x":[[[[[[[[[[1]]]]]]]]]]}""" },
        { "control character in string", "{\"ts_nonce\":\"a\u0001\"}" },
        { "NUL inside", "{\"ts_nonce\":\"a\0b\"}" },
    };

    [Theory]
    [MemberData(nameof(MalformedNonces))]
    public void ServerNonce_Malformed_IsRefused(string name, string json)
    {
        Assert.NotNull(name);
        Malformed.Rejects<RdsAadServerNonce>(RdsAadServerNonce.TryParse, Encoding.UTF8.GetBytes(json));
    }

    [Fact]
    public void ServerNonce_InvalidUtf8_IsRefused() =>
        Malformed.Rejects<RdsAadServerNonce>(RdsAadServerNonce.TryParse, [.. "{\"ts_nonce\":\""u8, 0xC3, 0x28, .. "\"}"u8], PduErrorKind.InvalidField);

    [Fact]
    public void ServerNonce_TwoNuls_IsRefused() =>
        Malformed.Rejects<RdsAadServerNonce>(RdsAadServerNonce.TryParse, [.. RdsAadCorpus.ServerNonce, 0]);

    [Fact]
    public void Pdus_EveryTruncation_IsRefused()
    {
        // Without their NUL (which is optional to the parsers), every strict prefix of the JSON must be refused.
        Malformed.RejectsEveryTruncation<RdsAadServerNonce>(RdsAadServerNonce.TryParse, RdsAadCorpus.ServerNonce[..^1]);
        Malformed.RejectsEveryTruncation<RdsAadAuthResult>(RdsAadAuthResult.TryParse, RdsAadCorpus.ResultAccessDenied[..^1]);
        Malformed.RejectsEveryTruncation<RdsAadAuthRequest>(RdsAadAuthRequest.TryParse, RdsAadCorpus.AuthRequest[..^1]);
    }

    public static TheoryData<string, string> MalformedResults() => new()
    {
        { "uint32 max + 1", "4294967296" },
        { "int32 min - 1", "-2147483649" },
        { "fraction", "1.5" },
        { "exponent", "1e3" },
        { "exponent capital", "0E0" },
        { "zero as 0.0", "0.0" },
        { "string", "\"0\"" },
        { "true", "true" },
        { "null", "null" },
        { "array", "[0]" },
        { "object", "{}" },
        { "huge", "99999999999999999999999" },
        { "leading zero", "00" },
        { "plus sign", "+1" },
    };

    [Theory]
    [MemberData(nameof(MalformedResults))]
    public void AuthResult_Malformed_IsRefused(string name, string value)
    {
        Assert.NotNull(name);
        Malformed.Rejects<RdsAadAuthResult>(RdsAadAuthResult.TryParse, Encoding.UTF8.GetBytes($$"""{"authentication_result":{{value}}}"""));
    }

    [Theory]
    [InlineData("""{}""")]
    [InlineData("""{"authentication_result":0,"authentication_result":0}""")]
    [InlineData("""{"Authentication_Result":0}""")]
    public void AuthResult_MissingOrDuplicate_IsRefused(string json) =>
        Malformed.Rejects<RdsAadAuthResult>(RdsAadAuthResult.TryParse, Encoding.UTF8.GetBytes(json), PduErrorKind.InvalidField);

    public static TheoryData<string, byte[]> MalformedRequests()
    {
        var h = RdsAadCorpus.Header;
        var p = RdsAadCorpus.Payload;
        string Replace(string what, string with) => p.Replace(what, with, StringComparison.Ordinal);
        string Remove(string member) => RemoveMember(p, member);
        byte[] Raw(string assertion) => RdsAadCorpus.Message($$"""{"rdp_assertion":"{{assertion}}"}""");
        var parts = RdsAadCorpus.Assertion.Split('.');
        return new TheoryData<string, byte[]>
        {
            { "member missing", RdsAadCorpus.Message("""{"assertion":"a.b.c"}""") },
            { "member not a string", RdsAadCorpus.Message("""{"rdp_assertion":1}""") },
            { "two parts", Raw($"{parts[0]}.{parts[1]}") },
            { "four parts", Raw($"{RdsAadCorpus.Assertion}.x") },
            { "one part", Raw(parts[0]) },
            { "empty signature", Raw($"{parts[0]}.{parts[1]}.") },
            { "empty header", Raw($".{parts[1]}.{parts[2]}") },
            { "padding", Raw($"{parts[0]}=.{parts[1]}.{parts[2]}") },
            { "plus", Raw($"{parts[0]}.{parts[1]}.{parts[2]}+") },
            { "slash", Raw($"{parts[0]}/.{parts[1]}.{parts[2]}") },
            { "impossible length", Raw($"{parts[0]}.{parts[1]}.AAAAA") },
            { "header not JSON", RdsAadTests.Request("not json", p) },
            { "header array", RdsAadTests.Request("[1]", p) },
            { "header without alg", RdsAadTests.Request("""{"kid":"x"}""", p) },
            { "alg not a string", RdsAadTests.Request("""{"alg":256}""", p) },
            { "kid not a string", RdsAadTests.Request("""{"alg":"RS256","kid":1}""", p) },
            { "typ not a string", RdsAadTests.Request("""{"alg":"RS256","typ":[]}""", p) },
            { "payload not JSON", RdsAadTests.Request(h, "ts=1") },
            { "payload a string", RdsAadTests.Request(h, "\"x\"") },
            { "ts missing", RdsAadTests.Request(h, Remove("ts")) },
            { "ts bool", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":true")) },
            { "ts negative string", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":\"-5\"")) },
            { "ts negative number", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":-5")) },
            { "ts fraction", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":1.5")) },
            { "ts exponent", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":1e9")) },
            { "ts words", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":\"soon\"")) },
            { "ts string with space", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":\" 1795346132\"")) },
            { "ts overflow", RdsAadTests.Request(h, Replace("\"ts\":\"1795346132\"", "\"ts\":\"99999999999999999999\"")) },
            { "at missing", RdsAadTests.Request(h, Remove("at")) },
            { "u missing", RdsAadTests.Request(h, Remove("u")) },
            { "u number", RdsAadTests.Request(h, Replace("\"u\":\"ms-device-service://termsrv.wvd.microsoft.com/name/vm1\"", "\"u\":7")) },
            { "nonce missing", RdsAadTests.Request(h, Remove("nonce")) },
            { "cnf missing", RdsAadTests.Request(h, Remove("cnf")) },
            { "cnf a string", RdsAadTests.Request(h, Replace("\"cnf\":{\"jwk\":{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"" + RdsAadCorpus.ExampleModulus + "\"}}", "\"cnf\":\"x\"")) },
            { "jwk missing", RdsAadTests.Request(h, Replace("\"cnf\":{\"jwk\"", "\"cnf\":{\"key\"")) },
            { "kty EC", RdsAadTests.Request(h, Replace("\"kty\":\"RSA\"", "\"kty\":\"EC\"")) },
            { "kty missing", RdsAadTests.Request(h, Replace("\"kty\":\"RSA\",", string.Empty)) },
            { "n missing", RdsAadTests.Request(h, Replace(",\"n\":\"" + RdsAadCorpus.ExampleModulus + "\"", string.Empty)) },
            { "n not base64url", RdsAadTests.Request(h, Replace(RdsAadCorpus.ExampleModulus, "not+base64/")) },
            { "n empty", RdsAadTests.Request(h, Replace(RdsAadCorpus.ExampleModulus, string.Empty)) },
            { "e number", RdsAadTests.Request(h, Replace("\"e\":\"AQAB\"", "\"e\":65537")) },
            { "client_claims number", RdsAadTests.Request(h, p[..p.IndexOf(",\"client_claims\"", StringComparison.Ordinal)] + ",\"client_claims\":1}") },
            { "client_claims object (not double-encoded)", RdsAadTests.Request(h, p[..p.IndexOf(",\"client_claims\"", StringComparison.Ordinal)] + ",\"client_claims\":{\"aad_nonce\":\"x\"}}") },
            { "client_claims not JSON", RdsAadTests.Request(h, p[..p.IndexOf(",\"client_claims\"", StringComparison.Ordinal)] + ",\"client_claims\":\"aad_nonce=x\"}") },
            { "client_claims array", RdsAadTests.Request(h, p[..p.IndexOf(",\"client_claims\"", StringComparison.Ordinal)] + ",\"client_claims\":\"[1]\"}") },
            { "duplicate at", RdsAadTests.Request(h, p[..^1] + ",\"at\":\"again\"}") },
            { "oversized assertion", RdsAadCorpus.Message($$"""{"rdp_assertion":"{{new string('A', RdsAadFraming.DefaultMaxMessageBytes + 1)}}"}""") },
        };
    }

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public void AuthRequest_Malformed_IsRefused(string name, byte[] json)
    {
        Assert.NotNull(name);
        Malformed.Rejects<RdsAadAuthRequest>(RdsAadAuthRequest.TryParse, json);
    }

    private static string RemoveMember(string payload, string member)
    {
        // The corpus payload's members are in FreeRDP's order; remove one "name":value pair including its comma.
        var start = payload.IndexOf($"\"{member}\":", StringComparison.Ordinal);
        var depth = 0;
        var inString = false;
        var i = start + member.Length + 3;
        for (; i < payload.Length; i++)
        {
            var c = payload[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }
            }
            else if (c == '"')
            {
                inString = true;
            }
            else if (c is '{' or '[')
            {
                depth++;
            }
            else if (c is '}' or ']')
            {
                if (depth == 0)
                {
                    break;
                }

                depth--;
            }
            else if (c == ',' && depth == 0)
            {
                return payload[..start] + payload[(i + 1)..];
            }
        }

        return payload[..(start - 1)] + payload[i..];
    }
}
