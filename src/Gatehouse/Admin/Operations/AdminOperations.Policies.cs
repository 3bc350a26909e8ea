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
        await CheckStrengthAsync(policy, cancellationToken).ConfigureAwait(false);
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
        await CheckStrengthAsync(policy, cancellationToken).ConfigureAwait(false);
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
        var probe = await AccessProbe.RunAsync(Db, Access, user, host, request.Ip, request.Mfa, Now, cancellationToken, request.Passkey).ConfigureAwait(false);
        var decision = probe.Decision;
        return new WhatIfView(probe.User.UserPrincipalName, probe.Host.Name, probe.ClientAddress?.ToString(), probe.Methods, probe.PolicyLines,
            decision.Allowed, decision.Refusal.ToString(), decision.Reason, decision.UserMessage, decision.Fix,
            probe.MfaWouldHelp && decision.Refusal == AccessRefusal.PolicyControlMissing, AccessProbe.Verdict(decision), probe.BrokenPolicy, probe.StrengthLines(Access.SecurityInfoUrl(Tenant)));
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
        var strengthFix = password.Allowed || probe.MfaWouldHelp || mfa.Policies is not { UnmetStrengths.Count: > 0 } unmet
            ? null
            : unmet.UnmetStrengths[0].Requirement is { AllowsPasskey: true } passkeyOnly
                ? $"{passkeyOnly.Fix(Access.SecurityInfoUrl(Tenant))}. Password-only paths (NLA, TLS) and the authenticator app cannot meet '{passkeyOnly.Strength.Name}': connect with web account sign-in, or the hold screen's QR sign-in, and use a passkey there."
                : unmet.UnmetStrengths[0].Requirement.Fix(Access.SecurityInfoUrl(Tenant));
        var fix = password.Allowed ? null
            : strengthFix is not null ? strengthFix
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
            probe.User.Enabled, probe.User.MustChangePassword, roleSummary, accountSummary, AccessProbe.Verdict(password), AccessProbe.Verdict(mfa), probe.BrokenPolicy, probe.StrengthLines(Access.SecurityInfoUrl(Tenant)));
    }

    // Authentication strengths: the built-ins (read-only) and the tenant's custom ones.
    public async Task<IReadOnlyList<StrengthView>> ListStrengthsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesRead, Scope.Tenant);
        var custom = await Access.LoadStrengthsAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var usage = await StrengthUsageAsync(cancellationToken).ConfigureAwait(false);
        return [.. AuthenticationStrengths.BuiltIn.Concat(custom).Select(s => ToView(s, usage))];
    }

    public async Task<StrengthView> GetStrengthAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesRead, Scope.Tenant);
        var strength = await FindStrengthAsync(name, cancellationToken).ConfigureAwait(false);
        return ToView(strength, await StrengthUsageAsync(cancellationToken).ConfigureAwait(false));
    }

    public async Task<StrengthView> CreateStrengthAsync(CreateStrengthRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.Require(PoliciesWrite, Scope.Tenant);
        var display = AdminNames.Require("The strength's name", request.Name, AuthenticationStrengths.MaxNameLength);
        var description = AdminNames.Optional("The strength's description (--description)", request.Description, 1024);
        var combinations = request.Combinations ?? [];
        if (combinations.Count is 0 or > AuthenticationStrengths.MaxCombinations)
        {
            throw AdminProblemException.BadRequest($"Give 1-{AuthenticationStrengths.MaxCombinations} combinations with --combination (e.g. --combination fido2 --combination password,softwareOath).");
        }

        var strength = new AuthenticationStrength
        {
            DisplayName = display,
            Description = description,
            PolicyType = "custom",
            RequirementsSatisfied = "mfa",
            AllowedCombinations = [.. combinations.Select(c => c is null ? string.Empty : AuthenticationStrengths.Normalize(c)).Distinct(StringComparer.Ordinal)],
        };
        if (AuthenticationStrengths.Validate(strength) is { } error)
        {
            throw AdminProblemException.BadRequest($"{error} Check --combination.");
        }

        if (AuthenticationStrengths.BuiltIn.Any(b => string.Equals(b.DisplayName, display, StringComparison.OrdinalIgnoreCase)))
        {
            throw AdminProblemException.Conflict($"'{display}' is a built-in authentication strength; choose another name.");
        }

        var normalized = DirectoryService.NormalizeName(display);
        if (await Db.AuthenticationStrengths.AnyAsync(s => s.TenantId == Tenant && s.NormalizedName == normalized, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"An authentication strength named '{display}' already exists; delete it first or choose another name.");
        }

        var now = Now;
        var record = new AuthenticationStrengthRecord
        {
            Id = Guid.NewGuid(),
            TenantId = Tenant,
            DisplayName = display,
            NormalizedName = normalized,
            Description = description,
            CombinationsJson = JsonSerializer.Serialize(strength.AllowedCombinations),
            CreatedAt = now,
            ModifiedAt = now,
        };
        Db.AuthenticationStrengths.Add(record);
        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        return ToView(AccessService.ToStrength(record), new Dictionary<string, List<string>>());
    }

    public async Task<DeletedView> DeleteStrengthAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(PoliciesDelete, Scope.Tenant);
        var strength = await FindStrengthAsync(name, cancellationToken).ConfigureAwait(false);
        if (strength.PolicyType == "builtIn")
        {
            throw AdminProblemException.BadRequest($"'{strength.Name}' is a built-in authentication strength; it cannot be deleted.");
        }

        var usage = await StrengthUsageAsync(cancellationToken).ConfigureAwait(false);
        if (usage.TryGetValue(strength.Id!, out var policies) && policies.Count > 0)
        {
            throw AdminProblemException.Conflict($"The authentication strength '{strength.Name}' is used by {string.Join(", ", policies.Select(p => $"'{p}'"))}; change or delete those policies first.");
        }

        var id = Guid.Parse(strength.Id!);
        await Db.AuthenticationStrengths.Where(s => s.TenantId == Tenant && s.Id == id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new DeletedView(strength.Name);
    }

    /// <summary>Refuses a policy whose authentication strength names no built-in or custom strength of the tenant.</summary>
    private async Task CheckStrengthAsync(ConditionalAccessPolicy policy, CancellationToken cancellationToken)
    {
        if (policy.GrantControls?.AuthenticationStrength is { } reference
            && AuthenticationStrengths.Resolve(reference, await Access.LoadStrengthsAsync(Tenant, cancellationToken).ConfigureAwait(false), out var error) is null)
        {
            throw AdminProblemException.BadRequest($"{error} Create it first ('gatehouse policy strength create') or use a built-in one.");
        }
    }

    private async Task<AuthenticationStrength> FindStrengthAsync(string name, CancellationToken cancellationToken)
    {
        var custom = await Access.LoadStrengthsAsync(Tenant, cancellationToken).ConfigureAwait(false);
        var reference = Guid.TryParse(name, out _) ? new AuthenticationStrength { Id = name } : new AuthenticationStrength { DisplayName = name };
        return AuthenticationStrengths.Resolve(reference, custom, out _)
            ?? throw AdminProblemException.NotFound($"There is no authentication strength '{name}'; 'gatehouse policy strength list' shows them.");
    }

    /// <summary>The policies that use each strength, by the strength's id.</summary>
    private async Task<Dictionary<string, List<string>>> StrengthUsageAsync(CancellationToken cancellationToken)
    {
        var (policies, _, _) = await Access.LoadPoliciesAsync(Tenant, cancellationToken).ConfigureAwait(false);
        return policies.Where(p => p.GrantControls?.AuthenticationStrength?.Id is not null)
            .GroupBy(p => p.GrantControls!.AuthenticationStrength!.Id!, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Select(p => p.DisplayName).ToList(), StringComparer.OrdinalIgnoreCase);
    }

    private static StrengthView ToView(AuthenticationStrength s, Dictionary<string, List<string>> usage) =>
        new(s.Id ?? string.Empty, s.Name, s.PolicyType ?? "custom", s.Description, s.AllowedCombinations, AuthenticationStrengths.AchievableIn(s),
            s.Id is not null && usage.TryGetValue(s.Id, out var used) ? used : []);

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
        if (policy.GrantControls is { } grant && (grant.BuiltInControls.Count > 0 || grant.AuthenticationStrength is not null))
        {
            var controls = grant.BuiltInControls.ToList();
            if (grant.AuthenticationStrength is { } strength)
            {
                controls.Add($"authentication strength '{strength.Name}'");
            }

            parts.Add(string.Join($" {grant.Operator} ", controls));
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
