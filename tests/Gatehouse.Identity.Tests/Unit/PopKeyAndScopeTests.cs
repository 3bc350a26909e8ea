using System.Text;

namespace Gatehouse.Identity.Tests.Unit;

public sealed class PopKeyTests
{
    private const string Thumbprint = "ZxQjD40lq2A7VJ8nWbYkT3uR1sXcE5fGh6iJ9kLmN0o"; // 43 base64url characters

    private static string B64(string json) => Base64Url.Encode(Encoding.UTF8.GetBytes(json));

    [Fact]
    public void TryParseReqCnf_FreeRdpShape_Thumbprint()
    {
        Assert.True(PopKey.TryParseReqCnf(B64($"{{\"kid\":\"{Thumbprint}\"}}"), out var thumbprint, out var error));
        Assert.Equal(Thumbprint, thumbprint);
        Assert.Equal("", error);
    }

    [Fact]
    public void TryParseReqCnf_ExtraMembers_Ignored()
    {
        Assert.True(PopKey.TryParseReqCnf(B64($"{{\"kid\":\"{Thumbprint}\",\"xms_ksl\":\"sw\"}}"), out var thumbprint, out _));
        Assert.Equal(Thumbprint, thumbprint);
    }

    public static TheoryData<string> Malformed() => new()
    {
        "",
        B64($"{{\"kid\":\"{Thumbprint}\"}}") + "=", // padding
        B64($"{{\"kid\":\"{Thumbprint}\"}}").Replace('-', '+').Replace('_', '/') + "+/", // standard alphabet
        "a", // impossible base64 length
        "not base64 at all!",
        B64("not json"),
        B64("[\"kid\"]"),
        B64("\"kid\""),
        B64("{}"),
        B64("{\"KID\":\"" + Thumbprint + "\"}"),
        B64("{\"kid\":42}"),
        B64("{\"kid\":null}"),
        B64("{\"kid\":{\"kid\":\"" + Thumbprint + "\"}}"),
        B64("{\"kid\":\"" + Thumbprint[..42] + "\"}"),
        B64("{\"kid\":\"" + Thumbprint + "A\"}"),
        B64("{\"kid\":\"" + Thumbprint[..42] + "+\"}"),
        B64("{\"kid\":\"" + Thumbprint[..42] + "=\"}"),
        B64("{\"kid\":\"" + Thumbprint + "\",\"kid\":\"" + Thumbprint + "\"}"),
        B64("{\"kid\":\"" + Thumbprint + "\""),
        B64("{\"a\":[[[[[[[[[[1]]]]]]]]]],\"kid\":\"" + Thumbprint + "\"}"),
        new string('A', PopKey.MaxReqCnfLength + 4),
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void TryParseReqCnf_Malformed_Refused(string reqCnf)
    {
        Assert.False(PopKey.TryParseReqCnf(reqCnf, out var thumbprint, out var error));
        Assert.Equal("", thumbprint);
        Assert.NotEmpty(error);
    }
}

public sealed class RdpScopeTests
{
    [Theory]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/wkstn1/user_impersonation", "wkstn1")]
    [InlineData("MS-DEVICE-SERVICE://TERMSRV.WVD.MICROSOFT.COM/name/WKSTN1/USER_IMPERSONATION", "wkstn1")]
    [InlineData("openid ms-device-service://termsrv.wvd.microsoft.com/name/web-01/user_impersonation offline_access", "web-01")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/a/user_impersonation", "a")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/host2/user_impersonation", "host2")]
    public void TryParse_Valid_Label(string scope, string label)
    {
        Assert.True(RdpScope.TryParse(scope, out var parsed, out var error), error);
        Assert.Equal(label, parsed);
    }

    [Theory]
    [InlineData("127")] // FreeRDP's /v:127.0.0.1
    [InlineData("10")]
    [InlineData("0")]
    [InlineData("127.0.0.1")]
    [InlineData("192.168.1.20")]
    [InlineData("0x7f000001")]
    [InlineData("::1")]
    [InlineData("[::1]")]
    [InlineData("fe80::1")]
    public void TryParse_IpLookingLabel_RefusedWithClearMessage(string label)
    {
        Assert.False(RdpScope.TryParse($"ms-device-service://termsrv.wvd.microsoft.com/name/{label}/user_impersonation", out _, out var error));
        Assert.Equal(RdpScope.IpAddressError, error);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("openid")]
    [InlineData("https://graph.microsoft.com/.default")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/wkstn1")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/wkstn1/")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/wkstn1/admin")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name//user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/-host/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/host-/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/host.example.org/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/ho st/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/hôst/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/a/b/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/user_impersonation")]
    [InlineData("ms-device-service://termsrv.wvd.microsoft.com/name/a/user_impersonation ms-device-service://termsrv.wvd.microsoft.com/name/b/user_impersonation")]
    [InlineData("ms-device-service://evil.example/name/a/user_impersonation")]
    public void TryParse_Invalid_Refused(string? scope)
    {
        Assert.False(RdpScope.TryParse(scope, out var label, out var error));
        Assert.Equal("", label);
        Assert.NotEmpty(error);
    }

    [Fact]
    public void Resource_LowerCase() => Assert.Equal("ms-device-service://termsrv.wvd.microsoft.com/name/wkstn1", RdpScope.Resource("WKSTN1"));

    [Fact]
    public void RdpClient_RegisteredRedirects_ExactOnly()
    {
        Assert.True(RdpClient.IsRegisteredRedirectUri(RdpClient.BrokerRedirectUri, "login.test", "common"));
        Assert.True(RdpClient.IsRegisteredRedirectUri("https://login.test/common/oauth2/nativeclient", "login.test", "common"));
        Assert.False(RdpClient.IsRegisteredRedirectUri("https://login.test/common/oauth2/nativeclient/", "login.test", "common"));
        Assert.False(RdpClient.IsRegisteredRedirectUri(RdpClient.BrokerRedirectUri.ToUpperInvariant(), "login.test", "common"));
        Assert.Equal("a85cf173-4192-42f8-81fa-777a763e6e2c", RdpClient.ClientId);
    }

    [Fact]
    public void AnyHostScope_IsTheDeviceServiceScopeWithAStar_AndTryParseNeverAcceptsIt()
    {
        Assert.Equal("ms-device-service://termsrv.wvd.microsoft.com/name/*/user_impersonation", RdpScope.AnyHostScope);
        Assert.False(RdpScope.TryParse(RdpScope.AnyHostScope, out _, out var error));
        Assert.Equal("host name may contain only letters, digits and '-'", error);
    }
}
