using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Tls;

namespace Gatehouse.Gateway.Tests;

/// <summary>The sentences users see are product surface (the seeds' words): each one is pinned here.</summary>
public sealed class SignInMessagesTests
{
    [Fact]
    public void Messages_AreTheSeedsWords()
    {
        Assert.Equal("Your credentials didn't work.", SignInMessages.CredentialsDidNotWork);
        Assert.Equal("The remote computer can't be reached right now. Try again later or contact your system administrator.", SignInMessages.HostUnreachable);
        Assert.Equal("Your account is locked. Try again later.", SignInMessages.AccountLocked);
        Assert.Equal("Your account has been disabled. Contact your administrator.", SignInMessages.AccountDisabled);
        Assert.Equal("You must change your password before signing in.", SignInMessages.MustChangePassword);
        Assert.Equal("Remote machine is Microsoft Entra joined. If you are signing in to your work account, try using your work email address.", SignInMessages.NotAWorkAccount);
        Assert.Equal("IP address can't be used with this sign-in; connect with the host name.", SignInMessages.UseHostName);
    }

    [Fact]
    public void HoldScreenMessages_SayWhatToDoNext()
    {
        Assert.Contains("Sign in again", SignInMessages.WrongOneTimeCode, StringComparison.Ordinal);
        Assert.Contains("Wait a minute", SignInMessages.TooManyAttempts, StringComparison.Ordinal);
        Assert.Contains("Set up your authenticator app", SignInMessages.MfaEnrollmentRequired, StringComparison.Ordinal);
        Assert.Contains("Connect again", SignInMessages.HoldTimeout, StringComparison.Ordinal);
        Assert.Contains("Connect again", SignInMessages.QrSignInDenied, StringComparison.Ordinal);
        Assert.Contains("Connect with FreeRDP 3", SignInMessages.HandoverUnsupported, StringComparison.Ordinal);
        Assert.Contains("Scan the code", SignInMessages.QrSignInInstructions, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_AreDistinct()
    {
        var messages = typeof(SignInMessages).GetFields()
            .Where(field => field.IsLiteral)
            .Select(field => (string)field.GetRawConstantValue()!)
            .ToList();
        Assert.Equal(14, messages.Count);
        Assert.Equal(messages.Count, messages.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void OlderNames_AreTheTableEntries()
    {
        Assert.Equal(SignInMessages.NotAWorkAccount, NlaUserName.EntraJoinedMessage);
        Assert.Equal(SignInMessages.UseHostName, TlsAuthenticator.UseHostNameMessage);
    }
}
