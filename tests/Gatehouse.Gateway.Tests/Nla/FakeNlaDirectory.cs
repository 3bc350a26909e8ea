using System.Collections.Concurrent;
using System.Net;
using Gatehouse.Gateway.Nla;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.WebAccount;
using Gatehouse.Protocol.Ntlm;

namespace Gatehouse.Gateway.Tests.Nla;

/// <summary>alice@contoso.test with password Correct-Horse-1; state, lockout and the authorisation answer are set by each test.</summary>
internal sealed class FakeNlaDirectory : INlaDirectory
{
    private static readonly NlaAccount Alice = new(Guid.NewGuid(), Guid.NewGuid(), "alice@contoso.test", NtlmV2.NtHash("Correct-Horse-1"));
    private readonly ConcurrentQueue<string> _passwordChecks = new();
    private int _lookups;
    private int _wrongProofs;
    private int _unknownUserChecks;

    public NlaAccountCheck State { get; init; } = NlaAccountCheck.Ok;

    public bool LockOnWrongProof { get; init; }

    /// <summary>What the right password gets (the identity provider's answer: disabled, temporary, locked).</summary>
    public NlaAccountCheck PasswordOutcome { get; init; } = NlaAccountCheck.Ok;

    public SessionGrant? Grant { get; init; }

    public WebAccountAuthorization? Authorization { get; init; }

    public int Lookups => _lookups;

    public int WrongProofs => _wrongProofs;

    public IReadOnlyList<string> PasswordChecks => [.. _passwordChecks];

    public string? AuthorizedHostLabel { get; private set; }

    public Task<NlaAccount?> FindAccountAsync(string userPrincipalName, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _lookups);
        return Task.FromResult(string.Equals(userPrincipalName, Alice.UserPrincipalName, StringComparison.OrdinalIgnoreCase) ? Alice : null);
    }

    public Task<NlaAccountCheck> CheckStateAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken) => Task.FromResult(State);

    public Task<NlaAccountCheck> RecordWrongProofAsync(NlaAccount account, IPAddress client, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _wrongProofs);
        return Task.FromResult(LockOnWrongProof ? NlaAccountCheck.LockedOut : NlaAccountCheck.LogonFailure);
    }

    /// <summary>How many unknown-user password checks were made (the timing equaliser of the TLS sign-in).</summary>
    public int UnknownUserChecks => _unknownUserChecks;

    public Task CheckUnknownUserPasswordAsync(string password, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _unknownUserChecks);
        return Task.CompletedTask;
    }

    public Task<NlaAccountCheck> CheckPasswordAsync(NlaAccount account, string password, IPAddress client, CancellationToken cancellationToken)
    {
        _passwordChecks.Enqueue($"{account.UserPrincipalName} {password}");
        return Task.FromResult(password != "Correct-Horse-1" ? NlaAccountCheck.LogonFailure : PasswordOutcome);
    }

    /// <summary>The host leg the TLS sign-in opens before the password (null: vm1 is unknown).</summary>
    public PasswordHostLeg? HostLeg { get; init; }

    public List<string> HostLookups { get; } = [];

    public Task<HostLegLookup> FindHostLegAsync(string hostLabel, CancellationToken cancellationToken)
    {
        lock (HostLookups)
        {
            HostLookups.Add(hostLabel);
        }

        return Task.FromResult(HostLeg is { } leg && string.Equals(hostLabel, leg.HostName, StringComparison.OrdinalIgnoreCase)
            ? new HostLegLookup(leg, "found")
            : new HostLegLookup(null, $"unknown_host: no host or alias '{hostLabel}' is registered"));
    }

    public Task<WebAccountAuthorization> AuthorizeAsync(GatewayConnection connection, NlaAccount account, string hostLabel, CancellationToken cancellationToken)
    {
        AuthorizedHostLabel = hostLabel;
        return Task.FromResult(Authorization ?? new WebAccountAuthorization(0, "allowed by test") { Grant = Grant });
    }
}
