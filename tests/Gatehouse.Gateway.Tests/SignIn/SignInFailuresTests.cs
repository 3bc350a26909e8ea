using Gatehouse.Gateway.SignIn;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.RdsAad;

namespace Gatehouse.Gateway.Tests.SignIn;

/// <summary>The failure vocabulary and its tables: one code per failure, one answer per edge, one sentence per failure.</summary>
public sealed class SignInFailuresTests
{
    [Fact]
    public void EveryFailure_HasACode_AndOnlyTheAccessRefusalsShareOne()
    {
        var codes = Enum.GetValues<SignInFailure>().Where(f => !SignInFailures.IsAccessRefusal(f)).Select(SignInFailures.Code).ToList();
        Assert.Equal(codes.Count, codes.Distinct(StringComparer.Ordinal).Count());
        Assert.All(codes, c => Assert.Matches("^[a-z]+(_[a-z]+)*$", c));
        Assert.All(Enum.GetValues<SignInFailure>().Where(SignInFailures.IsAccessRefusal), f => Assert.Equal("authorization", SignInFailures.Code(f)));
    }

    [Fact]
    public void Of_PrefixesTheReasonWithTheCode()
    {
        var refusal = SignInRefusal.Of(SignInFailure.DecisionTimeout, "took too long");
        Assert.Equal("decision_timeout: took too long", refusal.Reason);
        Assert.Equal(SignInMessages.HostUnreachable, refusal.Message);
        Assert.Equal("Ask for the role.", (refusal with { UserMessage = "Ask for the role." }).Message);
    }

    [Theory]
    [InlineData(SignInFailure.AccessDenied, RdsAadAuthResult.AccessDenied)]
    [InlineData(SignInFailure.AccessUserDisabled, RdsAadAuthResult.AccountDisabled)]
    [InlineData(SignInFailure.AccessPasswordChangeRequired, RdsAadAuthResult.PasswordExpired)]
    [InlineData(SignInFailure.AccessUnknownUser, RdsAadAuthResult.LogonFailure)]
    [InlineData(SignInFailure.AccessNotPossible, RdsAadAuthResult.LogonFailure)]
    [InlineData(SignInFailure.HostUnreachable, RdsAadAuthResult.NoLogonServers)]
    [InlineData(SignInFailure.SessionRecordFailed, RdsAadAuthResult.NoLogonServers)]
    [InlineData(SignInFailure.DecisionTimeout, RdsAadAuthResult.NoLogonServers)]
    [InlineData(SignInFailure.MalformedRequest, RdsAadAuthResult.InvalidToken)]
    [InlineData(SignInFailure.AssertionRefused, RdsAadAuthResult.InvalidToken)]
    public void RdsAadEdge_MapsEachFailure(SignInFailure failure, int code) => Assert.Equal(code, SignInFailures.RdsAadResult(failure));

    [Theory]
    [InlineData(SignInFailure.UnknownUser, NtStatus.LogonFailure)]
    [InlineData(SignInFailure.BadPassword, NtStatus.LogonFailure)]
    [InlineData(SignInFailure.NoNtHash, NtStatus.LogonFailure)]
    [InlineData(SignInFailure.NotAWorkAccount, NtStatus.LogonFailure)]
    [InlineData(SignInFailure.LockedOut, NtStatus.AccountLockedOut)]
    [InlineData(SignInFailure.UserDisabled, NtStatus.AccountDisabled)]
    [InlineData(SignInFailure.AccessUserDisabled, NtStatus.AccountDisabled)]
    [InlineData(SignInFailure.PasswordChangeRequired, NtStatus.PasswordMustChange)]
    [InlineData(SignInFailure.AccessPasswordChangeRequired, NtStatus.PasswordMustChange)]
    [InlineData(SignInFailure.AccessUnknownUser, NtStatus.LogonFailure)]
    [InlineData(SignInFailure.AccessDenied, NtStatus.AccessDenied)]
    [InlineData(SignInFailure.AccessNotPossible, NtStatus.AccessDenied)]
    [InlineData(SignInFailure.HostUnreachable, NtStatus.NoLogonServers)]
    [InlineData(SignInFailure.DecisionTimeout, NtStatus.NoLogonServers)]
    [InlineData(SignInFailure.SessionRecordFailed, NtStatus.NoLogonServers)]
    public void NtStatusEdge_MapsEachFailure(SignInFailure failure, uint status) => Assert.Equal(status, SignInFailures.NtStatus(failure));

    [Fact]
    public void ErrorInfoEdge_TellsAccessRefusalsFromTheRest()
    {
        foreach (var failure in Enum.GetValues<SignInFailure>())
        {
            var expected = SignInFailures.IsAccessRefusal(failure) ? ErrorInfoCode.ServerInsufficientPrivileges
                : failure == SignInFailure.HoldTimeout ? ErrorInfoCode.LogonTimeout
                : ErrorInfoCode.ServerDeniedConnection;
            Assert.Equal(expected, SignInFailures.ErrorInfo(failure));
        }
    }

    [Theory]
    [InlineData(SignInFailure.UnknownUser, SignInMessages.CredentialsDidNotWork)]
    [InlineData(SignInFailure.BadPassword, SignInMessages.CredentialsDidNotWork)]
    [InlineData(SignInFailure.NoPassword, SignInMessages.CredentialsDidNotWork)]
    [InlineData(SignInFailure.AssertionRefused, SignInMessages.CredentialsDidNotWork)]
    [InlineData(SignInFailure.NotAWorkAccount, SignInMessages.NotAWorkAccount)]
    [InlineData(SignInFailure.LockedOut, SignInMessages.AccountLocked)]
    [InlineData(SignInFailure.UserDisabled, SignInMessages.AccountDisabled)]
    [InlineData(SignInFailure.PasswordChangeRequired, SignInMessages.MustChangePassword)]
    [InlineData(SignInFailure.UnknownHost, SignInMessages.UseHostName)]
    [InlineData(SignInFailure.HostUnreachable, SignInMessages.HostUnreachable)]
    [InlineData(SignInFailure.DecisionTimeout, SignInMessages.HostUnreachable)]
    [InlineData(SignInFailure.MalformedRequest, null)]
    [InlineData(SignInFailure.AccessDenied, null)]
    public void Messages_TheUserSees(SignInFailure failure, string? message) => Assert.Equal(message, SignInFailures.UserMessage(failure));

    [Fact]
    public void CredSspRefusals_TheDirectoryGives_KeepTheirMeaningAndCode()
    {
        foreach (var kind in Enum.GetValues<CredSspServerFailure>())
        {
            var failure = SignInFailures.FromCredSsp(kind);
            if (failure == SignInFailure.CredSspRefused)
            {
                continue;
            }

            // The CredSSP machine's code for the refusal is the gateway's code for the failure it maps to.
            Assert.Equal(CredSspServer.Code(kind), SignInFailures.Code(failure));
        }

        Assert.Equal(SignInFailure.CredSspRefused, SignInFailures.FromCredSsp(CredSspServerFailure.BadMic));
        Assert.Equal(7, Enum.GetValues<CredSspServerFailure>().Count(k => SignInFailures.FromCredSsp(k) != SignInFailure.CredSspRefused));
    }
}
