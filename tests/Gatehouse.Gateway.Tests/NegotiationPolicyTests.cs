using Gatehouse.Gateway.Negotiation;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests;

public sealed class NegotiationPolicyTests
{
    private const SignInMethods All = SignInMethods.WebAccount | SignInMethods.Nla | SignInMethods.Tls;

    public static TheoryData<SecurityProtocol, SignInMethods, SecurityProtocol, SignInMethods> Selections() => new()
    {
        // FreeRDP /sec:aad sends 0x10 alone.
        { SecurityProtocol.RdsAad, SignInMethods.WebAccount, SecurityProtocol.RdsAad, SignInMethods.WebAccount },
        { SecurityProtocol.RdsAad | SecurityProtocol.HybridEx | SecurityProtocol.Hybrid | SecurityProtocol.Ssl, All, SecurityProtocol.RdsAad, SignInMethods.WebAccount },
        { SecurityProtocol.HybridEx | SecurityProtocol.Hybrid | SecurityProtocol.Ssl, All, SecurityProtocol.HybridEx, SignInMethods.Nla },
        { SecurityProtocol.Hybrid | SecurityProtocol.Ssl, All, SecurityProtocol.Hybrid, SignInMethods.Nla },
        { SecurityProtocol.Ssl, All, SecurityProtocol.Ssl, SignInMethods.Tls },
        { SecurityProtocol.RdsAad | SecurityProtocol.Hybrid, SignInMethods.Nla, SecurityProtocol.Hybrid, SignInMethods.Nla },
        { SecurityProtocol.Hybrid | SecurityProtocol.Ssl, SignInMethods.Tls, SecurityProtocol.Ssl, SignInMethods.Tls },
    };

    [Theory]
    [MemberData(nameof(Selections))]
    public void Decide_SelectsTheBestEnabledProtocol(SecurityProtocol offered, SignInMethods enabled, SecurityProtocol expected, SignInMethods method)
    {
        var decision = NegotiationPolicy.Decide(Request(offered), enabled);
        Assert.False(decision.IsRefused);
        Assert.False(decision.Result.IsFailure);
        Assert.Equal(expected, decision.Result.SelectedProtocol);
        Assert.Equal(method, decision.Method);
        Assert.Equal(NegotiationResponseFlags.ExtendedClientDataSupported, decision.Result.ResponseFlags);
    }

    public static TheoryData<SecurityProtocol, SignInMethods, NegotiationFailureCode, string> Refusals() => new()
    {
        { SecurityProtocol.Hybrid | SecurityProtocol.Ssl, SignInMethods.WebAccount, NegotiationFailureCode.SslNotAllowedByServer, "Sign in with a web account" },
        { SecurityProtocol.Ssl, SignInMethods.WebAccount | SignInMethods.Nla, NegotiationFailureCode.HybridRequiredByServer, "accepts only web account sign-in (RDS AAD Auth) or NLA" },
        { SecurityProtocol.RdsAad, SignInMethods.Nla, NegotiationFailureCode.HybridRequiredByServer, "Web account sign-in is turned off" },
        { SecurityProtocol.Rdp, SignInMethods.WebAccount, NegotiationFailureCode.SslRequiredByServer, "standard RDP security only" },
        { SecurityProtocol.RdsTls, SignInMethods.WebAccount, NegotiationFailureCode.SslNotAllowedByServer, "protocols RdsTls" },
        { SecurityProtocol.RdsAad, SignInMethods.None, NegotiationFailureCode.SslNotAllowedByServer, "every sign-in method is turned off" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void Decide_NothingAcceptable_RefusesWithCodeAndReason(SecurityProtocol offered, SignInMethods enabled, NegotiationFailureCode code, string reason)
    {
        var decision = NegotiationPolicy.Decide(Request(offered), enabled);
        Assert.True(decision.IsRefused);
        Assert.True(decision.Result.IsFailure);
        Assert.Equal(code, decision.Result.FailureCode);
        Assert.Equal(0, decision.Result.RawFlags);
        Assert.Equal(SignInMethods.None, decision.Method);
        Assert.Contains(reason, decision.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_NoNegotiationRequest_RefusesStandardRdpSecurity()
    {
        var decision = NegotiationPolicy.Decide(Request(null), All);
        Assert.Equal(NegotiationFailureCode.SslRequiredByServer, decision.Result.FailureCode);
        Assert.Contains("standard RDP security", decision.Refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(NegotiationRequestFlags.RestrictedAdminModeRequired, "restricted admin mode")]
    [InlineData(NegotiationRequestFlags.RedirectedAuthenticationModeRequired, "Remote Credential Guard")]
    [InlineData(NegotiationRequestFlags.RestrictedAdminModeRequired | NegotiationRequestFlags.RedirectedAuthenticationModeRequired, "restricted admin mode")]
    public void Decide_CredentialDelegationModes_AreRefusedWithAdvice(NegotiationRequestFlags flags, string mode)
    {
        var request = Request(SecurityProtocol.RdsAad | SecurityProtocol.Hybrid | SecurityProtocol.Ssl, flags);
        var decision = NegotiationPolicy.Decide(request, All);
        Assert.True(decision.IsRefused);
        Assert.Contains(mode, decision.Refusal, StringComparison.Ordinal);
        Assert.Contains("turn it off", decision.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_CorrelationInfoFlag_DoesNotAffectSelection()
    {
        var decision = NegotiationPolicy.Decide(Request(SecurityProtocol.RdsAad, NegotiationRequestFlags.CorrelationInfoPresent), SignInMethods.WebAccount);
        Assert.Equal(SecurityProtocol.RdsAad, decision.Result.SelectedProtocol);
    }

    private static ConnectionRequest Request(SecurityProtocol? offered, NegotiationRequestFlags flags = NegotiationRequestFlags.None)
    {
        var bytes = Convert.FromHexString("0300002a25e00000000000436f6f6b69653a206d737473686173683d726f6f740d0a0100080010000000");
        Assert.True(ConnectionRequest.TryParse(bytes, out var request, out var error), error?.ToString());
        return request.WithNegotiation(offered is { } p ? new NegotiationRequest(flags & ~NegotiationRequestFlags.CorrelationInfoPresent, p) : null);
    }
}
