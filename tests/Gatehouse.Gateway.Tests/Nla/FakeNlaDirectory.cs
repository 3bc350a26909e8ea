using System.Collections.Concurrent;
using System.Net;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.Ntlm;

namespace Gatehouse.Gateway.Tests.Nla;

/// <summary>
/// alice@contoso.test with password Correct-Horse-1; state, lockout and the authorisation answer are set by each test.
/// Like the real directory, every call yields and honours its cancellation token; a test can hold a call with a <see cref="Gate"/>.
/// </summary>
internal sealed class FakeNlaDirectory : INlaDirectory, ISignInAuthorizer
{
    private static readonly NlaAccount Alice = new(Guid.NewGuid(), Guid.NewGuid(), "alice@contoso.test", NtlmV2.NtHash("Correct-Horse-1"));

    /// <summary>The one account.</summary>
    public static NlaAccount Account => Alice;
    private readonly ConcurrentQueue<string> _passwordChecks = new();
    private int _lookups;
    private int _wrongProofs;
    private int _unknownUserChecks;

    public NlaAccountCheck State { get; init; } = NlaAccountCheck.Ok;

    public bool LockOnWrongProof { get; init; }

    /// <summary>What the right password gets (the identity provider's answer: disabled, temporary, locked).</summary>
    public NlaAccountCheck PasswordOutcome { get; init; } = NlaAccountCheck.Ok;

    public SessionGrant? Grant { get; init; }

    public AccessOutcome? Authorization { get; init; }

    /// <summary>Holds the password check (the TSCredentials' or the Client Info PDU's password) until opened.</summary>
    public Gate? HoldPasswordCheck { get; init; }

    /// <summary>Holds the recording of a wrong NTLM proof until opened.</summary>
    public Gate? HoldWrongProof { get; init; }

    /// <summary>Holds the account-state check after the NTLM proof until opened.</summary>
    public Gate? HoldState { get; init; }

    public int Lookups => _lookups;

    public int WrongProofs => _wrongProofs;

    public IReadOnlyList<string> PasswordChecks => [.. _passwordChecks];

    public string? AuthorizedHostLabel { get; private set; }

    public async Task<NlaAccount?> FindAccountAsync(string userPrincipalName, CancellationToken cancellationToken)
    {
        await WorkAsync(null, cancellationToken);
        Interlocked.Increment(ref _lookups);
        return string.Equals(userPrincipalName, Alice.UserPrincipalName, StringComparison.OrdinalIgnoreCase) ? Alice : null;
    }

    public async Task<NlaAccountCheck> CheckStateAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken)
    {
        await WorkAsync(HoldState, cancellationToken);
        return State;
    }

    public async Task<NlaAccountCheck> RecordWrongProofAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken)
    {
        await WorkAsync(HoldWrongProof, cancellationToken);
        Interlocked.Increment(ref _wrongProofs);
        return LockOnWrongProof ? NlaAccountCheck.LockedOut : NlaAccountCheck.LogonFailure;
    }

    /// <summary>How many unknown-user password checks were made (the timing equaliser of the TLS sign-in).</summary>
    public int UnknownUserChecks => _unknownUserChecks;

    public async Task CheckUnknownUserPasswordAsync(string password, CancellationToken cancellationToken)
    {
        await WorkAsync(HoldPasswordCheck, cancellationToken);
        Interlocked.Increment(ref _unknownUserChecks);
    }

    public async Task<NlaAccountCheck> CheckPasswordAsync(NlaAccount account, string password, IPAddress client, CancellationToken cancellationToken)
    {
        await WorkAsync(HoldPasswordCheck, cancellationToken);
        _passwordChecks.Enqueue($"{account.UserPrincipalName} {password}");
        return password != "Correct-Horse-1" ? NlaAccountCheck.LogonFailure : PasswordOutcome;
    }

    /// <summary>The host leg the TLS sign-in opens before the password (null: vm1 is unknown).</summary>
    public PasswordHostLeg? HostLeg { get; init; }

    public List<string> HostLookups { get; } = [];

    public async Task<HostLegLookup> FindHostLegAsync(string hostLabel, CancellationToken cancellationToken)
    {
        await WorkAsync(null, cancellationToken);
        lock (HostLookups)
        {
            HostLookups.Add(hostLabel);
        }

        return HostLeg is { } leg && string.Equals(hostLabel, leg.HostName, StringComparison.OrdinalIgnoreCase)
            ? new HostLegLookup(leg, "found")
            : new HostLegLookup(null, $"unknown_host: no host or alias '{hostLabel}' is registered");
    }

    public async Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken)
    {
        await WorkAsync(null, cancellationToken);
        AuthorizedHostLabel = subject.HostLabel ?? string.Empty;
        return Authorization ?? AccessOutcome.Allow("allowed by test", Grant);
    }

    /// <summary>What a store call does before it answers: yields, waits at its gate if held, and honours the token.</summary>
    private static async Task WorkAsync(Gate? hold, CancellationToken cancellationToken)
    {
        await Task.Yield();
        if (hold is not null)
        {
            await hold.PassAsync(cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
    }
}
