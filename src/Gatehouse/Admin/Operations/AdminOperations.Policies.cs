using System.Net;
using System.Text.Json;
using Gatehouse.Access;
using Gatehouse.Identity;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

namespace Gatehouse.Admin.Operations;

/// <summary>Conditional Access: policies, named locations (tenant scope), what-if and diagnose.</summary>
internal sealed partial class AdminOperations
{
    /// <summary>Most ranges in one named location.</summary>
    public const int MaxRanges = 2000;

    public async Task<IReadOnlyList<PolicyView>> ListPoliciesAsync(CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesRead, Scope.Tenant);
        var records = await Db.Policies.AsNoTracking().Where(p => p.TenantId == Tenant).OrderBy(p => p.CreatedAt).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. records.Select(ToView)];
    }

    public async Task<string> GetPolicyJsonAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesRead, Scope.Tenant);
        return (await FindPolicyAsync(name, tracked: false, cancellationToken).ConfigureAwait(false)).Json;
    }

    public async Task<PolicyView> CreatePolicyAsync(string json, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesWrite, Scope.Tenant);
        var policy = ParsePolicy(json);
        var normalized = DirectoryService.NormalizeName(policy.DisplayName);
        if (await Db.Policies.AnyAsync(p => p.TenantId == Tenant && p.NormalizedName == normalized, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"A policy named '{policy.DisplayName}' already exists; delete it first ('gatehouse policy delete \"{policy.DisplayName}\"'), replace it ('gatehouse policy replace'), or choose another displayName.");
        }

        var now = Now;
        var record = new PolicyRecord
        {
            Id = Guid.NewGuid(),
            TenantId = Tenant,
            DisplayName = policy.DisplayName.Trim(),
            NormalizedName = normalized,
            State = AccessProbe.StateName(policy.State),
            CreatedAt = now,
            ModifiedAt = now,
        };
        record.Json = PolicyJson.Serialize(policy with { Id = record.Id });
        Db.Policies.Add(record);
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return ToView(record);
    }

    public async Task<PolicyView> ReplacePolicyAsync(string name, string json, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesWrite, Scope.Tenant);
        var policy = ParsePolicy(json);
        var record = await FindPolicyAsync(name, tracked: true, cancellationToken).ConfigureAwait(false);
        var normalized = DirectoryService.NormalizeName(policy.DisplayName);
        if (normalized != record.NormalizedName
            && await Db.Policies.AnyAsync(p => p.TenantId == Tenant && p.NormalizedName == normalized && p.Id != record.Id, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"Another policy is named '{policy.DisplayName}'; choose another displayName.");
        }

        record.DisplayName = policy.DisplayName.Trim();
        record.NormalizedName = normalized;
        record.State = AccessProbe.StateName(policy.State);
        record.ModifiedAt = Now;
        record.Json = PolicyJson.Serialize(policy with { Id = record.Id });
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return ToView(record);
    }

    public async Task<PolicyView> SetPolicyStateAsync(string name, string state, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesWrite, Scope.Tenant);
        PolicyState parsed = state?.Trim() switch
        {
            "enabled" => PolicyState.Enabled,
            "disabled" => PolicyState.Disabled,
            "enabledForReportingButNotEnforced" or "report-only" => PolicyState.ReportOnly,
            _ => throw AdminProblemException.BadRequest($"The state '{state}' is not enabled, disabled or enabledForReportingButNotEnforced."),
        };
        var record = await FindPolicyAsync(name, tracked: true, cancellationToken).ConfigureAwait(false);
        if (!PolicyJson.TryParse(record.Json, out var policy, out var error))
        {
            throw AdminProblemException.BadRequest($"The stored policy cannot be read ({error}); replace it with 'gatehouse policy replace'.");
        }

        record.State = AccessProbe.StateName(parsed);
        record.ModifiedAt = Now;
        record.Json = PolicyJson.Serialize(policy with { State = parsed });
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return ToView(record);
    }

    public async Task<DeletedView> DeletePolicyAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesDelete, Scope.Tenant);
        var record = await FindPolicyAsync(name, tracked: false, cancellationToken).ConfigureAwait(false);
        await Db.Policies.Where(p => p.Id == record.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new DeletedView(record.DisplayName);
    }

    public async Task<WhatIfView> WhatIfAsync(WhatIfRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(PoliciesRead, Scope.Tenant);
        var (user, host) = await ProbeTargetsAsync(request.User, request.Host, cancellationToken).ConfigureAwait(false);
        var probe = await AccessProbe.RunAsync(Db, Access, user, host, request.Ip, request.Mfa, Now, cancellationToken).ConfigureAwait(false);
        var decision = probe.Decision;
        return new WhatIfView(probe.User.UserPrincipalName, probe.Host.Name, probe.ClientAddress?.ToString(), probe.Methods, probe.PolicyLines,
            decision.Allowed, decision.Refusal.ToString(), decision.Reason, decision.UserMessage, decision.Fix,
            probe.MfaWouldHelp && decision.Refusal == AccessRefusal.PolicyControlMissing, AccessProbe.Verdict(decision), probe.BrokenPolicy);
    }

    public async Task<DiagnosisView> DiagnoseAsync(DiagnoseRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(PoliciesRead, Scope.Tenant);

        // The user may be given as typed into a client: map the accepted forms (AzureAD\…, .\EntraID\…) to the UPN
        // and explain a DOMAIN\user name the way the sign-in is refused.
        var typed = request.User ?? string.Empty;
        if (!Gatehouse.Gateway.Nla.NlaUserName.TryResolve(string.Empty, typed, out var upn))
        {
            throw AdminProblemException.BadRequest($"'{typed}' cannot sign in: it is not a work account name. The client is told: \"{Gatehouse.Gateway.Nla.NlaUserName.EntraJoinedMessage}\" Use the user's UPN (user@domain), or AzureAD\\user@domain.");
        }

        var (user, host) = await ProbeTargetsAsync(upn, request.Host, cancellationToken).ConfigureAwait(false);
        return await DiagnoseCoreAsync(user, host, request.Ip, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>What <c>diagnose</c> finds for <paramref name="user"/> on <paramref name="host"/>, once the caller may know it.</summary>
    private async Task<DiagnosisView> DiagnoseCoreAsync(User user, Gatehouse.Storage.Host host, string? ip, CancellationToken cancellationToken)
    {
        var probe = await AccessProbe.RunAsync(Db, Access, user, host, ip, mfa: false, Now, cancellationToken).ConfigureAwait(false);
        var password = probe.Decision;
        var mfa = probe.WithMfa;
        var mfaEnrolled = probe.User.TotpConfirmedAt is not null;
        var fix = password.Allowed ? null
            : probe.MfaWouldHelp
                ? mfaEnrolled
                    ? "Sign in with web account sign-in, which asks for the one-time code (password-only NLA/TLS sign-ins cannot do MFA)."
                    : $"Enroll the user in an authenticator app: gatehouse user mfa enroll {probe.User.UserPrincipalName}; then sign in with web account sign-in."
                : password.Fix;
        var decisive = password.Allowed ? password : mfa.Allowed ? mfa : password;
        var rbac = decisive.Rbac ?? probe.Rbac;
        var roleSummary = rbac.Allowed
            ? $"'{rbac.Role?.Name}' assigned at {rbac.GrantedBy?.Scope} (assignment {rbac.GrantedBy?.Id}) → {(rbac.Level == LoginLevel.Administrator ? "administrator" : "regular user")}"
            : $"none. {rbac.Explanation}";
        var mapped = rbac.Level == LoginLevel.Administrator ? probe.Host.AdminAccountName : rbac.Level == LoginLevel.User ? probe.Host.UserAccountName : null;
        var accountSummary = decisive.Account is { } account
            ? $"{account.DisplayName} (the gateway logs on to the host with it; the password is never shown)"
            : mapped is { Length: > 0 }
                ? $"{mapped} would be used once the sign-in is allowed (the password is never shown)"
                : "none (no role allows signing in, or the host has no account mapped for the role)";
        return new DiagnosisView(
            probe.User.UserPrincipalName, probe.Host.Name, probe.HostGroup, probe.ClientAddress?.ToString(),
            password.Allowed, mfa.Allowed, mfaEnrolled,
            rbac.Role?.Name, rbac.GrantedBy?.Id, rbac.GrantedBy?.Scope.ToString(), decisive.Account?.DisplayName,
            password.Refusal.ToString(), password.Reason, password.UserMessage, mfa.Refusal.ToString(), mfa.Reason, fix, probe.PolicyLines,
            probe.User.Enabled, probe.User.MustChangePassword, roleSummary, accountSummary, AccessProbe.Verdict(password), AccessProbe.Verdict(mfa), probe.BrokenPolicy);
    }

    // Named locations.
    public async Task<IReadOnlyList<LocationView>> ListLocationsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(LocationsRead, Scope.Tenant);
        var records = await Db.NamedLocations.AsNoTracking().Where(l => l.TenantId == Tenant).OrderBy(l => l.DisplayName).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. records.Select(r => new LocationView(r.Id, r.DisplayName, r.IsTrusted, JsonSerializer.Deserialize<List<string>>(r.IpRangesJson) ?? []))];
    }

    public async Task<LocationView> CreateLocationAsync(CreateLocationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(LocationsWrite, Scope.Tenant);
        var display = AdminNames.Require("The location name (--name)", request.Name, AdminNames.DisplayNameLength);
        var cidrs = request.Ranges ?? [];

        if (cidrs.Count is 0 or > MaxRanges)
        {
            throw AdminProblemException.BadRequest($"Give 1-{MaxRanges} ranges with --cidr.");
        }

        foreach (var cidr in cidrs)
        {
            if (!IPNetwork.TryParse(cidr, out _))
            {
                throw AdminProblemException.BadRequest($"'{cidr}' is not a CIDR range (address/prefix, e.g. 10.0.0.0/8); check --cidr.");
            }
        }

        if (await Db.NamedLocations.AnyAsync(l => l.TenantId == Tenant && l.DisplayName == display, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"A location named '{display}' already exists; delete it first or choose another name.");
        }

        var record = new NamedLocationRecord
        {
            Id = Guid.NewGuid(),
            TenantId = Tenant,
            DisplayName = display,
            IpRangesJson = JsonSerializer.Serialize(cidrs),
            IsTrusted = request.Trusted,
        };
        Db.NamedLocations.Add(record);
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return new LocationView(record.Id, record.DisplayName, record.IsTrusted, [.. cidrs]);
    }

    public async Task<DeletedView> DeleteLocationAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(LocationsDelete, Scope.Tenant);
        var id = Guid.TryParse(name, out var parsed) ? parsed : Guid.Empty;
        var deleted = await Db.NamedLocations.Where(l => l.TenantId == Tenant && (l.DisplayName == name || l.Id == id)).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return deleted == 0
            ? throw AdminProblemException.NotFound($"There is no location '{name}'; 'gatehouse location list' shows them.")
            : new DeletedView(name);
    }

    private async Task<(User User, Gatehouse.Storage.Host Host)> ProbeTargetsAsync(string? upn, string? hostName, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(upn) || string.IsNullOrWhiteSpace(hostName))
        {
            throw AdminProblemException.BadRequest("Give the user (UPN) and the host (name or alias).");
        }

        Caller.Require(UsersRead, Scope.Tenant);
        var user = await FindUserAsync(upn, cancellationToken).ConfigureAwait(false);
        var host = await FindHostForAsync(AccessActions.HostsRead, hostName, cancellationToken).ConfigureAwait(false);
        return (user, host);
    }

    private static ConditionalAccessPolicy ParsePolicy(string json)
    {
        if (json.Length > PolicyJson.MaxBytes)
        {
            throw AdminProblemException.BadRequest($"The policy is larger than {PolicyJson.MaxBytes} bytes; a policy is a small JSON document.");
        }

        if (!PolicyJson.TryParse(json, out var policy, out var error))
        {
            throw AdminProblemException.BadRequest($"{error} Fix the policy JSON and send it again.");
        }

        AdminNames.Require("The policy's displayName", policy.DisplayName, AdminNames.DisplayNameLength);
        using (var document = JsonDocument.Parse(json))
        {
            RefuseUnsafeStrings(document.RootElement, "$");
        }

        return policy;
    }

    /// <summary>Refuses a policy whose strings (user names, group names, locations…) hold unsafe characters: they are shown later.</summary>
    private static void RefuseUnsafeStrings(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                AdminNames.Optional($"The policy's {path}", element.GetString(), PolicyJson.MaxBytes);
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    RefuseUnsafeStrings(item, $"{path}[{index++}]");
                }

                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    AdminNames.Optional($"A member name of the policy's {path}", property.Name, PolicyJson.MaxBytes);
                    RefuseUnsafeStrings(property.Value, $"{path}.{property.Name}");
                }

                break;
        }
    }

    private async Task<PolicyRecord> FindPolicyAsync(string name, bool tracked, CancellationToken cancellationToken)
    {
        var normalized = DirectoryService.NormalizeName(name);
        var id = Guid.TryParse(name, out var parsed) ? parsed : Guid.Empty;
        var source = tracked ? Db.Policies : Db.Policies.AsNoTracking();
        var record = await source.FirstOrDefaultAsync(p => p.TenantId == Tenant && (p.NormalizedName == normalized || p.Id == id), cancellationToken).ConfigureAwait(false);
        return record ?? throw AdminProblemException.NotFound($"There is no policy '{name}'; 'gatehouse policy list' shows the policies.");
    }

    private static PolicyView ToView(PolicyRecord r)
    {
        var parsed = PolicyJson.TryParse(r.Json, out var policy, out var error);
        return new PolicyView(r.Id, r.DisplayName, r.State, parsed ? Controls(policy!) : $"unreadable: {error}", r.CreatedAt, r.ModifiedAt);
    }

    private static string Controls(ConditionalAccessPolicy policy)
    {
        var parts = new List<string>();
        if (policy.GrantControls is { BuiltInControls.Count: > 0 } grant)
        {
            parts.Add(string.Join($" {grant.Operator} ", grant.BuiltInControls));
        }

        if (policy.SessionControls?.SignInFrequency is { } frequency)
        {
            parts.Add($"sign-in every {frequency.Value} {frequency.Type}");
        }

        if (policy.SessionControls?.MaxSessionMinutes is { } minutes)
        {
            parts.Add($"sessions ≤ {minutes} min");
        }

        return string.Join("; ", parts);
    }
}
