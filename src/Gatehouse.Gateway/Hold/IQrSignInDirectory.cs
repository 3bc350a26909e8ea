using System.Net;
using Gatehouse.Gateway.SignIn;

namespace Gatehouse.Gateway.Hold;

/// <summary>A QR sign-in under way: what the screen shows, and the handle the gateway polls with.</summary>
/// <param name="UserCode">The short code the user types on the page (shown as <c>BCDF-GHJK</c>).</param>
/// <param name="VerificationUrl">The page where the code is entered (<c>/devicelogin</c>).</param>
/// <param name="CompleteUrl">The page with the code filled in: what the QR code holds.</param>
/// <param name="DeviceCode">The secret the gateway polls with (never shown).</param>
/// <param name="Interval">How often the gateway may poll.</param>
/// <param name="HostName">The host the question names, or null when the client named none (the picker follows).</param>
public sealed record QrSignInStart(string UserCode, string VerificationUrl, string CompleteUrl, string DeviceCode, TimeSpan Interval, string? HostName)
{
    /// <inheritdoc/>
    public override string ToString() => $"QrSignInStart for {HostName ?? "any host"}"; // The device code is a secret: never printed.
}

/// <summary>Where a QR sign-in stands.</summary>
public enum QrSignInState
{
    /// <summary>The user has not finished on the phone yet.</summary>
    Pending,

    /// <summary>The user signed in and answered yes: the subject is known.</summary>
    Approved,

    /// <summary>The user answered no, or the identity provider refused the sign-in.</summary>
    Denied,

    /// <summary>The code expired (or is unknown).</summary>
    Expired,
}

/// <summary>One poll of a QR sign-in.</summary>
/// <param name="State">Where it stands.</param>
/// <param name="Subject">Who signed in, with the methods used on the phone (when approved).</param>
public sealed record QrSignInPoll(QrSignInState State, SignInSubject? Subject = null);

/// <summary>
/// The QR sign-in's view of the identity provider: a device code for the RDP application naming the host (the user
/// signs in on the device-code page with whatever the policies ask, and answers "Are you trying to sign in to
/// &lt;host&gt;?"), and its polling. Gatehouse implements it over its device-code service.
/// </summary>
public interface IQrSignInDirectory
{
    /// <summary>Issues a code for a sign-in to <paramref name="hostLabel"/> (null: any host) from <paramref name="client"/>; null when none can be issued.</summary>
    Task<QrSignInStart?> BeginAsync(string? hostLabel, IPAddress client, TimeSpan lifetime, CancellationToken cancellationToken);

    /// <summary>Polls the sign-in (at most once per <see cref="QrSignInStart.Interval"/>).</summary>
    Task<QrSignInPoll> PollAsync(QrSignInStart started, CancellationToken cancellationToken);
}
