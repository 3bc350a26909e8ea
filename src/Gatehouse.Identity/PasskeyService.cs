using System.Text.Json;
using Fido2NetLib;
using Fido2NetLib.Exceptions;
using Fido2NetLib.Objects;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Identity;

/// <summary>Why a passkey ceremony was refused. Each value has a reason string for the sign-in log (<see cref="PasskeyService.ReasonFor"/>).</summary>
public enum PasskeyRefusal
{
    /// <summary>The response or the kept options could not be read (not JSON, too long, fields missing).</summary>
    Malformed,

    /// <summary>The ceremony's options are older than <see cref="PasskeyService.CeremonyLifetime"/>.</summary>
    Expired,

    /// <summary>The client data's origin is not <c>https://</c> + the public name (a look-alike page relayed it).</summary>
    WrongOrigin,

    /// <summary>The authenticator data's RP ID hash is not SHA-256 of the public name's host.</summary>
    WrongRpId,

    /// <summary>The client data's challenge is not the one this ceremony issued.</summary>
    ChallengeMismatch,

    /// <summary>No stored passkey has this credential id (removed, or never registered here).</summary>
    UnknownCredential,

    /// <summary>The user handle does not name the credential's owner.</summary>
    UserHandleMismatch,

    /// <summary>The signature counter did not increase: the authenticator may have been cloned.</summary>
    CounterRegression,

    /// <summary>The authenticator did not verify the user (UV flag clear); a passkey must be a second factor in itself.</summary>
    UserVerificationMissing,

    /// <summary>The signature does not verify with the stored public key.</summary>
    BadSignature,

    /// <summary>The credential id is already registered (to this or another user).</summary>
    CredentialAlreadyRegistered,

    /// <summary>The name is empty, longer than 64 characters, has control characters, or another passkey of the user has it.</summary>
    InvalidName,

    /// <summary>The user does not exist or is disabled.</summary>
    UserUnavailable,

    /// <summary>Any other verification failure reported by the FIDO2 library.</summary>
    Invalid,

    /// <summary>The authenticator's model (AAGUID) is not in <c>Gatehouse:Identity:Passkeys:AllowedAaguids</c>.</summary>
    AuthenticatorNotAllowed,

    /// <summary>The sign-in challenge was answered before: the same assertion presented twice (a replay, or a double submit).</summary>
    ChallengeReplayed,
}

/// <summary>
/// Options of one WebAuthn ceremony, issued by a <c>Begin…</c> call: <see cref="OptionsJson"/> goes to the browser
/// (<c>navigator.credentials.create/get</c>) and the whole record stays on the server (in the sign-in session) until the
/// matching <c>Complete…</c> call.
/// </summary>
public sealed record PasskeyCeremony(string OptionsJson, DateTimeOffset ExpiresAt);

/// <summary>Outcome of a passkey registration or assertion: the passkey on success, a typed refusal otherwise.</summary>
public sealed record PasskeyOutcome
{
    /// <summary>True when the ceremony succeeded.</summary>
    public bool Succeeded => Refusal is null;

    /// <summary>Why it was refused; null on success.</summary>
    public PasskeyRefusal? Refusal { get; init; }

    /// <summary>Reason for the sign-in log (the refusal's sentence plus the library's detail, never key material).</summary>
    public string Reason { get; init; } = "";

    /// <summary>The registered or used passkey (on success; on some refusals, the one presented).</summary>
    public Passkey? Passkey { get; init; }

    /// <summary>Its owner.</summary>
    public Guid? UserId => Passkey?.UserId;

    internal static PasskeyOutcome Refused(PasskeyRefusal refusal, string? detail = null, Passkey? passkey = null) => new()
    {
        Refusal = refusal,
        Reason = detail is null ? PasskeyService.ReasonFor(refusal) : $"{PasskeyService.ReasonFor(refusal)} ({detail})",
        Passkey = passkey,
    };
}

/// <summary>
/// Passkeys (FIDO2/WebAuthn, over the <c>Fido2</c> library): registration of discoverable credentials with user
/// verification required and attestation <c>none</c>, and username-less assertion (the credential's user handle finds
/// the user). The RP ID is the host of <c>Gatehouse:PublicName</c> and the only origin is <c>https://</c> + the public
/// name. A signature counter that does not increase is refused as a cloned authenticator.
/// </summary>
public sealed class PasskeyService
{
    /// <summary>How long a ceremony's options may be completed (WebAuthn's recommended upper timeout).</summary>
    public static readonly TimeSpan CeremonyLifetime = TimeSpan.FromMinutes(5);

    /// <summary>Longest browser response accepted (real ones are below 2 KiB without attestation certificates).</summary>
    public const int MaxResponseLength = 16 * 1024;

    /// <summary>Longest kept options accepted (the exclude list of a user with many passkeys stays well below this).</summary>
    public const int MaxOptionsLength = 64 * 1024;

    private readonly GatehouseDbContext db;
    private readonly TimeProvider time;
    private readonly Fido2 fido2;
    private readonly IReadOnlyList<Guid> allowedAaguids;

    /// <summary>Creates the service.</summary>
    public PasskeyService(GatehouseDbContext db, TimeProvider time, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        this.db = db;
        this.time = time;
        allowedAaguids = options.PasskeyAllowedAaguids;
        RpId = RpIdOf(options.PublicName);
        Origin = $"https://{options.PublicName}";
        fido2 = new Fido2(new Fido2Configuration
        {
            RPID = RpId,
            RPName = "Gatehouse",
            Origins = new HashSet<string>(StringComparer.Ordinal) { Origin },
            Timeout = (uint)CeremonyLifetime.TotalMilliseconds,
        });
    }

    /// <summary>The relying party id: the public name's host, without a port.</summary>
    public string RpId { get; }

    /// <summary>The only origin accepted.</summary>
    public string Origin { get; }

    /// <summary>The sentence for the sign-in log for <paramref name="refusal"/>.</summary>
    public static string ReasonFor(PasskeyRefusal refusal) => refusal switch
    {
        PasskeyRefusal.Malformed => "The passkey response could not be read",
        PasskeyRefusal.Expired => "The passkey request expired",
        PasskeyRefusal.WrongOrigin => "The passkey was used from a wrong origin",
        PasskeyRefusal.WrongRpId => "The passkey was made for a different relying party (RP ID)",
        PasskeyRefusal.ChallengeMismatch => "The passkey answered a different challenge",
        PasskeyRefusal.UnknownCredential => "The passkey is not registered",
        PasskeyRefusal.UserHandleMismatch => "The passkey's user handle does not match its owner",
        PasskeyRefusal.CounterRegression => "The passkey's signature counter went backwards (possibly a cloned authenticator)",
        PasskeyRefusal.ChallengeReplayed => "The passkey's answer to this sign-in was presented before (a replay)",
        PasskeyRefusal.UserVerificationMissing => "The authenticator did not verify the user",
        PasskeyRefusal.BadSignature => "The passkey's signature is not valid",
        PasskeyRefusal.CredentialAlreadyRegistered => "The passkey is already registered",
        PasskeyRefusal.InvalidName => "The passkey name is empty, too long, or already used",
        PasskeyRefusal.UserUnavailable => "The account does not exist or is disabled",
        PasskeyRefusal.AuthenticatorNotAllowed => "The authenticator's model (AAGUID) is not allowed by Gatehouse:Identity:Passkeys:AllowedAaguids",
        _ => "The passkey was refused",
    };

    /// <summary>The RP ID for a public name: its host without a port (<c>login.example.org:8443</c> → <c>login.example.org</c>).</summary>
    public static string RpIdOf(string publicName)
    {
        ArgumentNullException.ThrowIfNull(publicName);
        return Uri.TryCreate($"https://{publicName}", UriKind.Absolute, out var uri) ? uri.IdnHost : publicName;
    }

    /// <summary>The WebAuthn user handle of a user: the object id's 16 bytes.</summary>
    public static byte[] UserHandleOf(Guid userId) => userId.ToByteArray();

    /// <summary>The key a spent challenge is kept under: base64url SHA-256 of its bytes (43 characters).</summary>
    internal static string ChallengeHash(byte[] challenge) =>
        Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(challenge)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Starts registering a passkey for <paramref name="userId"/> (its existing passkeys are excluded).</summary>
    /// <returns>The ceremony, or null when the user does not exist or is disabled.</returns>
    public async Task<PasskeyCeremony?> BeginRegistrationAsync(Guid userId, CancellationToken cancellationToken = default)
    {
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            return null;
        }

        var existing = await db.Passkeys.AsNoTracking().Where(p => p.UserId == userId).Select(p => p.CredentialId)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var options = fido2.RequestNewCredential(new RequestNewCredentialParams
        {
            User = new Fido2User { Id = UserHandleOf(user.Id), Name = user.UserPrincipalName, DisplayName = user.DisplayName },
            ExcludeCredentials = [.. existing.Select(id => new PublicKeyCredentialDescriptor(id))],
            AuthenticatorSelection = new AuthenticatorSelection
            {
                ResidentKey = ResidentKeyRequirement.Required,
                UserVerification = UserVerificationRequirement.Required,
            },
            AttestationPreference = AttestationConveyancePreference.None,
        });
        return new PasskeyCeremony(options.ToJson(), time.GetUtcNow() + CeremonyLifetime);
    }

    /// <summary>Completes a registration begun for <paramref name="userId"/> with the browser's response and the user's name for the passkey.</summary>
    public async Task<PasskeyOutcome> CompleteRegistrationAsync(Guid userId, PasskeyCeremony ceremony, string responseJson, string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ceremony);
        if (time.GetUtcNow() > ceremony.ExpiresAt)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Expired);
        }

        var cleanName = NormalizeName(name);
        if (cleanName is null)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.InvalidName);
        }

        if (!TryRead(ceremony.OptionsJson, MaxOptionsLength, CredentialCreateOptions.FromJson, out var options)
            || !TryRead(responseJson, MaxResponseLength, j => JsonSerializer.Deserialize<AuthenticatorAttestationRawResponse>(j), out var response)
            || response.Response?.AttestationObject is null || response.Response.ClientDataJson is null
            || options.User?.Id is null || !options.User.Id.AsSpan().SequenceEqual(UserHandleOf(userId)))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Malformed);
        }

        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == userId, cancellationToken).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.UserUnavailable);
        }

        if (await db.Passkeys.AnyAsync(p => p.UserId == userId && p.Name == cleanName, cancellationToken).ConfigureAwait(false))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.InvalidName, "the user already has a passkey with this name");
        }

        RegisteredPublicKeyCredential credential;
        try
        {
            credential = await fido2.MakeNewCredentialAsync(new MakeNewCredentialParams
            {
                AttestationResponse = response,
                OriginalOptions = options,
                IsCredentialIdUniqueToUserCallback = async (args, ct) =>
                    !await db.Passkeys.AnyAsync(p => p.CredentialId == args.CredentialId, ct).ConfigureAwait(false),
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Fido2VerificationException e)
        {
            return PasskeyOutcome.Refused(Classify(e.Code), e.Message);
        }
        catch (Exception e) when (IsMalformedInput(e))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Malformed, e.GetType().Name);
        }

        if (allowedAaguids.Count > 0 && !allowedAaguids.Contains(credential.AaGuid))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.AuthenticatorNotAllowed, $"AAGUID {credential.AaGuid:D}");
        }

        if (credential.Id.Length > Passkey.CredentialIdLength || credential.PublicKey.Length > Passkey.PublicKeyLength)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Malformed, "credential id or public key too long");
        }

        var passkey = new Passkey
        {
            Id = Guid.NewGuid(),
            UserId = userId,
            CredentialId = credential.Id,
            PublicKey = credential.PublicKey,
            SignCount = credential.SignCount,
            BackupEligible = credential.IsBackupEligible,
            BackedUp = credential.IsBackedUp,
            Aaguid = credential.AaGuid,
            Name = cleanName,
            CreatedAt = time.GetUtcNow(),
        };
        db.Passkeys.Add(passkey);
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            // Two registrations raced on the same credential id or name; the unique indexes kept one.
            db.Entry(passkey).State = EntityState.Detached;
            return PasskeyOutcome.Refused(PasskeyRefusal.CredentialAlreadyRegistered, "stored concurrently");
        }

        return new PasskeyOutcome { Passkey = passkey, Reason = "Passkey registered" };
    }

    /// <summary>Starts a username-less sign-in with a passkey (no allowed credentials: the authenticator offers its discoverable ones).</summary>
    public PasskeyCeremony BeginAssertion()
    {
        var options = fido2.GetAssertionOptions(new GetAssertionOptionsParams
        {
            AllowedCredentials = [],
            UserVerification = UserVerificationRequirement.Required,
        });
        return new PasskeyCeremony(options.ToJson(), time.GetUtcNow() + CeremonyLifetime);
    }

    /// <summary>
    /// Completes a sign-in with a passkey: finds the credential, checks that the user handle names its owner, verifies
    /// origin, RP ID, challenge, user verification, signature and counter, then records the counter, backup state and use.
    /// </summary>
    public async Task<PasskeyOutcome> CompleteAssertionAsync(PasskeyCeremony ceremony, string responseJson, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ceremony);
        if (time.GetUtcNow() > ceremony.ExpiresAt)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Expired);
        }

        if (!TryRead(ceremony.OptionsJson, MaxOptionsLength, AssertionOptions.FromJson, out var options)
            || !TryRead(responseJson, MaxResponseLength, j => JsonSerializer.Deserialize<AuthenticatorAssertionRawResponse>(j), out var response)
            || response.RawId is null || response.Response?.AuthenticatorData is null || response.Response.ClientDataJson is null
            || response.Response.Signature is null || response.RawId.Length > Passkey.CredentialIdLength)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Malformed);
        }

        var credentialId = response.RawId;
        var passkey = await db.Passkeys.FirstOrDefaultAsync(p => p.CredentialId == credentialId, cancellationToken).ConfigureAwait(false);
        if (passkey is null)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.UnknownCredential);
        }

        // Username-less: the user handle is the only thing naming the user, so it must be present and be the owner's.
        if (response.Response.UserHandle is not { } handle || !handle.AsSpan().SequenceEqual(UserHandleOf(passkey.UserId)))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.UserHandleMismatch, passkey: passkey);
        }

        var enabled = await db.Users.AsNoTracking().Where(u => u.Id == passkey.UserId).Select(u => (bool?)u.Enabled)
            .FirstOrDefaultAsync(cancellationToken).ConfigureAwait(false);
        if (enabled != true)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.UserUnavailable, passkey: passkey);
        }

        VerifyAssertionResult result;
        try
        {
            result = await fido2.MakeAssertionAsync(new MakeAssertionParams
            {
                AssertionResponse = response,
                OriginalOptions = options,
                StoredPublicKey = passkey.PublicKey,
                StoredSignatureCounter = checked((uint)passkey.SignCount),
                IsUserHandleOwnerOfCredentialIdCallback = (args, _) =>
                    Task.FromResult(args.UserHandle.AsSpan().SequenceEqual(UserHandleOf(passkey.UserId))),
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Fido2VerificationException e)
        {
            return PasskeyOutcome.Refused(Classify(e.Code), e.Message, passkey);
        }
        catch (Exception e) when (IsMalformedInput(e))
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.Malformed, e.GetType().Name, passkey);
        }

        // The library checks this too; kept here so the rule does not depend on a library version. A counter of zero on
        // both sides means the authenticator does not count (most synced passkeys).
        if ((result.SignCount != 0 || passkey.SignCount != 0) && result.SignCount <= passkey.SignCount)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.CounterRegression, $"stored {passkey.SignCount}, presented {result.SignCount}", passkey);
        }

        // The challenge is spent once: a second presentation of the same assertion (or of another answer to the same
        // challenge) is refused even when the authenticator does not count signatures. The primary key decides between
        // racing presentations.
        var now = time.GetUtcNow();
        var use = new PasskeyChallengeUse { ChallengeHash = ChallengeHash(options.Challenge), ExpiresAt = ceremony.ExpiresAt };
        db.PasskeyChallengeUses.Add(use);
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
            db.Entry(use).State = EntityState.Detached;
        }
        catch (DbUpdateException e) when (!StoreStartup.IsUnavailable(e))
        {
            db.ChangeTracker.Clear();
            return PasskeyOutcome.Refused(PasskeyRefusal.ChallengeReplayed, "the challenge was answered before", passkey);
        }

        // The counter moves only forward, also between two sign-ins racing with different challenges.
        var stored = passkey.SignCount;
        var presented = (long)result.SignCount;
        var backedUp = result.IsBackedUp;
        var updated = await db.Passkeys
            .Where(p => p.Id == passkey.Id && (p.SignCount < presented || (presented == 0 && p.SignCount == 0)))
            .ExecuteUpdateAsync(
                u => u.SetProperty(p => p.SignCount, presented).SetProperty(p => p.BackedUp, backedUp).SetProperty(p => p.LastUsedAt, now),
                cancellationToken)
            .ConfigureAwait(false);
        if (updated == 0)
        {
            return PasskeyOutcome.Refused(PasskeyRefusal.CounterRegression, $"stored {stored} moved on meanwhile, presented {presented}", passkey);
        }

        passkey.SignCount = presented;
        passkey.BackedUp = backedUp;
        passkey.LastUsedAt = now;
        db.Entry(passkey).State = EntityState.Unchanged;

        // Spent challenges are kept only as long as their ceremonies could still be completed.
        await db.PasskeyChallengeUses.Where(u => u.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new PasskeyOutcome { Passkey = passkey, Reason = "Signed in with a passkey" };
    }

    /// <summary>The passkeys of a user, oldest first.</summary>
    public async Task<IReadOnlyList<Passkey>> ListAsync(Guid userId, CancellationToken cancellationToken = default) =>
        await db.Passkeys.AsNoTracking().Where(p => p.UserId == userId).OrderBy(p => p.CreatedAt).ThenBy(p => p.Name)
            .ToListAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Removes the user's passkey called <paramref name="name"/>; false when there is none.</summary>
    public async Task<bool> RemoveAsync(Guid userId, string name, CancellationToken cancellationToken = default)
    {
        var cleanName = NormalizeName(name);
        if (cleanName is null)
        {
            return false;
        }

        return await db.Passkeys.Where(p => p.UserId == userId && p.Name == cleanName)
            .ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <summary>Renames the user's passkey <paramref name="name"/> to <paramref name="newName"/> (validated as at registration).</summary>
    /// <returns>Null when renamed; otherwise why not (<see cref="PasskeyRefusal.InvalidName"/>, or <see cref="PasskeyRefusal.UnknownCredential"/> when there is no such passkey).</returns>
    public async Task<PasskeyRefusal?> RenameAsync(Guid userId, string name, string newName, CancellationToken cancellationToken = default)
    {
        var oldName = NormalizeName(name);
        var cleanName = NormalizeName(newName);
        if (cleanName is null)
        {
            return PasskeyRefusal.InvalidName;
        }

        var passkey = oldName is null ? null : await db.Passkeys.FirstOrDefaultAsync(p => p.UserId == userId && p.Name == oldName, cancellationToken).ConfigureAwait(false);
        if (passkey is null)
        {
            return PasskeyRefusal.UnknownCredential;
        }

        if (cleanName == passkey.Name)
        {
            return null;
        }

        if (await db.Passkeys.AnyAsync(p => p.UserId == userId && p.Name == cleanName, cancellationToken).ConfigureAwait(false))
        {
            return PasskeyRefusal.InvalidName;
        }

        passkey.Name = cleanName;
        try
        {
            await db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (DbUpdateException)
        {
            db.Entry(passkey).State = EntityState.Detached;
            return PasskeyRefusal.InvalidName;
        }

        return null;
    }

    /// <summary>
    /// A passkey name trimmed, or null when it is empty, longer than <see cref="Passkey.NameLength"/>, or has control,
    /// format (bidirectional, invisible) or line-separator characters (the name is printed in tables and logs).
    /// </summary>
    public static string? NormalizeName(string? name)
    {
        var trimmed = name?.Trim();
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > Passkey.NameLength || trimmed.Any(IsHostile))
        {
            return null;
        }

        return trimmed;
    }

    private static bool IsHostile(char c) => char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Control
        or System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator
        or System.Globalization.UnicodeCategory.ParagraphSeparator or System.Globalization.UnicodeCategory.Surrogate
        or System.Globalization.UnicodeCategory.PrivateUse or System.Globalization.UnicodeCategory.OtherNotAssigned;

    private static PasskeyRefusal Classify(Fido2ErrorCode code) => code switch
    {
        Fido2ErrorCode.InvalidAuthenticatorResponseOrigin or Fido2ErrorCode.MissingAuthenticatorResponseOrigin
            or Fido2ErrorCode.CrossOriginRequestNotAllowed or Fido2ErrorCode.InvalidAuthenticatorResponseTopOrigin => PasskeyRefusal.WrongOrigin,
        Fido2ErrorCode.InvalidRpidHash => PasskeyRefusal.WrongRpId,
        Fido2ErrorCode.InvalidAuthenticatorResponseChallenge or Fido2ErrorCode.MissingAuthenticatorResponseChallenge => PasskeyRefusal.ChallengeMismatch,
        Fido2ErrorCode.InvalidSignCount => PasskeyRefusal.CounterRegression,
        Fido2ErrorCode.UserVerificationRequirementNotMet => PasskeyRefusal.UserVerificationMissing,
        Fido2ErrorCode.InvalidSignature => PasskeyRefusal.BadSignature,
        Fido2ErrorCode.NonUniqueCredentialId => PasskeyRefusal.CredentialAlreadyRegistered,
        Fido2ErrorCode.InvalidAttestationObject or Fido2ErrorCode.MalformedAttestationObject or Fido2ErrorCode.MissingAttestationObject
            or Fido2ErrorCode.MalformedAuthenticatorResponse or Fido2ErrorCode.MissingAuthenticatorData
            or Fido2ErrorCode.InvalidAuthenticatorData => PasskeyRefusal.Malformed,
        _ => PasskeyRefusal.Invalid,
    };

    /// <summary>What the library throws, besides its own exception, on bytes it cannot decode (CBOR, COSE, JSON inside).</summary>
    private static bool IsMalformedInput(Exception e) =>
        e is System.Formats.Cbor.CborContentException or JsonException or FormatException or ArgumentException
            or InvalidOperationException or OverflowException or IndexOutOfRangeException or System.Security.Cryptography.CryptographicException;

    /// <summary>Reads client or kept JSON with a length cap; any exception of the reader is "malformed", never thrown on.</summary>
    private static bool TryRead<T>(string? json, int maxLength, Func<string, T?> read, out T value)
        where T : class
    {
        value = null!;
        if (string.IsNullOrEmpty(json) || json.Length > maxLength)
        {
            return false;
        }

        try
        {
            value = read(json)!;
            return value is not null;
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            return false;
        }
    }
}
