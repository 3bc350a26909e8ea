using System.Globalization;
using System.Security.Authentication;
using System.Security.Cryptography;
using Gatehouse.Access;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Identity;
using Gatehouse.Protocol.X224;
using Gatehouse.Storage;
using Microsoft.EntityFrameworkCore;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Admin.Operations;

/// <summary>Hosts (their own scope, below their host group) and host groups.</summary>
internal sealed partial class AdminOperations
{
    /// <summary>
    /// Why <c>host test</c> stops before the host's own logon: xrdp checks the password only after the whole connection
    /// sequence (MCS, capability exchange, finalization), inside its login screen, and shows a rejected password as text
    /// drawn on that screen, not as an RDP error a client could read; a full logon would also start a real session.
    /// </summary>
    public const string LogonNote =
        "Whether the host accepts these passwords is checked at the first sign-in, not here: xrdp verifies them only after the whole RDP connection sequence, in its own login screen, and reports a rejected password as text drawn on that screen rather than as a protocol error; a failed logon shows in 'gatehouse signins list' and on the host (xrdp-sesman log).";

    /// <summary>How long <c>host create</c> and <c>host update</c> wait for the host whose key they record.</summary>
    private static readonly TimeSpan FirstKeyTimeout = TimeSpan.FromSeconds(10);

    public async Task<IReadOnlyList<HostView>> ListHostsAsync(CancellationToken cancellationToken)
    {
        var views = await LoadHostsAsync(null, cancellationToken).ConfigureAwait(false);
        var visible = views.Where(h => Caller.Can(AccessActions.HostsRead, Scope.Host(h.Name), h.HostGroup)).ToList();
        if (visible.Count == 0 && !Caller.Can(AccessActions.HostsRead, Scope.Tenant))
        {
            // Nothing readable at all: say so rather than pretending the list is empty.
            Caller.Require(AccessActions.HostsRead, Scope.Tenant);
        }

        return visible;
    }

    public async Task<HostView> GetHostAsync(string name, CancellationToken cancellationToken)
    {
        var host = await FindHostForAsync(AccessActions.HostsRead, name, cancellationToken).ConfigureAwait(false);
        return (await LoadHostsAsync(host.Id, cancellationToken).ConfigureAwait(false)).Single();
    }

    public async Task<HostView> CreateHostAsync(CreateHostRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        HostGroup? group = null;
        if (!string.IsNullOrWhiteSpace(request.HostGroup))
        {
            // Creating a host is writing at the scope it will live under: its host group, or the tenant.
            Caller.Require(AccessActions.HostsWrite, Scope.HostGroup(DirectoryService.NormalizeName(request.HostGroup)));
            group = await FindHostGroupAsync(request.HostGroup, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            Caller.Require(AccessActions.HostsWrite, Scope.Tenant);
        }

        if (string.IsNullOrWhiteSpace(request.Name) || string.IsNullOrWhiteSpace(request.BackendHost))
        {
            throw AdminProblemException.BadRequest("Give the host's name (as users type it) and its backend (the real host's address, HOST:PORT).");
        }

        AdminNames.CheckHostFields(request.BackendHost, request.AdminAccount, request.UserAccount);

        var security = ParseSecurity(request.BackendSecurity) ?? BackendSecurity.Tls;
        if (string.IsNullOrWhiteSpace(request.AdminAccount) && string.IsNullOrWhiteSpace(request.UserAccount))
        {
            throw AdminProblemException.BadRequest("Give the host at least one mapped account: --admin-account NAME and/or --user-account NAME, each with its password (--…-password-stdin or --…-password-file FILE).");
        }

        if ((!string.IsNullOrWhiteSpace(request.AdminAccount) && string.IsNullOrEmpty(request.AdminPassword))
            || (!string.IsNullOrWhiteSpace(request.UserAccount) && string.IsNullOrEmpty(request.UserPassword)))
        {
            throw AdminProblemException.BadRequest("Each mapped account needs its password (adminPassword, userPassword); they are stored encrypted and never returned.");
        }

        var aliases = request.Aliases ?? [];
        await RefuseUsedNamesAsync(aliases.Prepend(request.Name), null, cancellationToken).ConfigureAwait(false);
        Host host;
        try
        {
            host = await Directory.CreateHostAsync(Tenant, request.Name, request.BackendHost.Trim(), request.BackendPort ?? 3389, security,
                NullIfEmpty(request.AdminAccount), NullIfEmpty(request.AdminAccount) is null ? null : request.AdminPassword,
                NullIfEmpty(request.UserAccount), NullIfEmpty(request.UserAccount) is null ? null : request.UserPassword, aliases, group?.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest($"{Sentence(e)} Use the host's short name (letters, digits and '-'), as users type it in their RDP client, and a port from 1 to 65535.");
        }

        var note = await TrustFirstKeyAsync(host, "host create", cancellationToken).ConfigureAwait(false);
        return (await LoadHostsAsync(host.Id, cancellationToken).ConfigureAwait(false)).Single() with { CertificatePinNote = note };
    }

    public async Task<HostView> UpdateHostAsync(string name, UpdateHostRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var found = await FindHostForAsync(AccessActions.HostsWrite, name, cancellationToken).ConfigureAwait(false);
        AdminNames.CheckHostFields(request.BackendHost, request.AdminAccount, request.UserAccount);
        var host = await Db.Hosts.Include(h => h.Aliases).FirstAsync(h => h.Id == found.Id, cancellationToken).ConfigureAwait(false);
        if (request.HostGroup is { } groupName)
        {
            // Moving a host is writing at the scope it goes to, too.
            Guid? target = null;
            if (groupName.Trim().Length > 0)
            {
                Caller.Require(AccessActions.HostsWrite, Scope.HostGroup(DirectoryService.NormalizeName(groupName)));
                target = (await FindHostGroupAsync(groupName, cancellationToken).ConfigureAwait(false)).Id;
            }
            else
            {
                Caller.Require(AccessActions.HostsWrite, Scope.Tenant);
            }

            host.HostGroupId = target;
        }

        var backendBefore = (host.BackendHost, host.BackendPort, host.BackendSecurity);
        if (request.BackendHost is { } backendHost)
        {
            host.BackendHost = NullIfEmpty(backendHost) ?? throw AdminProblemException.BadRequest("The backend host must not be empty; give HOST:PORT.");
        }

        if (request.BackendPort is { } port)
        {
            host.BackendPort = port is >= 1 and <= 65535 ? port : throw AdminProblemException.BadRequest($"The backend port {port} is out of range; use 1 to 65535.");
        }

        if (ParseSecurity(request.BackendSecurity) is { } security)
        {
            host.BackendSecurity = security;
        }

        (host.AdminAccountName, host.AdminSecretProtected) = UpdateAccount("admin", host.AdminAccountName, host.AdminSecretProtected, request.AdminAccount, request.AdminPassword);
        (host.UserAccountName, host.UserSecretProtected) = UpdateAccount("user", host.UserAccountName, host.UserSecretProtected, request.UserAccount, request.UserPassword);
        // An enrolled host's agent gives each user their own account: the gateway never uses stored passwords for it,
        // so they may all go (the audit's host-stored-passwords fix). A host without an agent needs one.
        if (host.AdminAccountName is null && host.UserAccountName is null
            && !await Db.HostAgents.AnyAsync(a => a.HostId == host.Id, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.BadRequest($"A host without an agent needs at least one mapped account; keep the admin or the user account, or enrol the host first (gatehouse host enroll {host.Name}).");
        }

        // The gateway (and 'host test') sends the mapped accounts' passwords to the backend, so whoever may point the
        // host elsewhere must also know those passwords: a new address, port or security takes them again.
        var newBackend = backendBefore != (host.BackendHost, host.BackendPort, host.BackendSecurity);
        if (newBackend)
        {
            RequirePasswordsForNewBackend(host, request);

            // The key trusted for the old backend says nothing about the new one: it is read again below.
            host.CertificatePin = null;
            host.CertificatePinnedAt = null;
            host.CertificatePinnedBy = null;
        }

        if (request.Aliases is { } aliases)
        {
            var labels = new List<string>();
            foreach (var alias in aliases)
            {
                if (!RdpScope.TryValidateLabel(alias, out var label, out var error))
                {
                    throw AdminProblemException.BadRequest($"{error} Use the alias's short name (letters, digits and '-').");
                }

                labels.Add(label);
            }

            await RefuseUsedNamesAsync(labels, host.Id, cancellationToken).ConfigureAwait(false);
            host.Aliases.Clear();
            foreach (var label in labels.Distinct(StringComparer.Ordinal).Where(l => l != host.Name))
            {
                host.Aliases.Add(new HostAlias { Name = label, HostId = host.Id });
            }
        }

        await Db.SaveChangesAsync(cancellationToken).ConfigureAwait(false);
        var note = newBackend ? await TrustFirstKeyAsync(host, "host update", cancellationToken).ConfigureAwait(false) : null;
        return (await LoadHostsAsync(host.Id, cancellationToken).ConfigureAwait(false)).Single() with { CertificatePinNote = note };
    }

    public async Task<HostDeletedView> DeleteHostAsync(string name, CancellationToken cancellationToken)
    {
        var host = await FindHostForAsync(HostsDelete, name, cancellationToken).ConfigureAwait(false);
        var scope = $"/hosts/{host.Name}";
        var assignments = await Db.RoleAssignments.Where(a => a.TenantId == Tenant && a.Scope == scope).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        await Db.HostAliases.Where(a => a.HostId == host.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        await Db.Consents.Where(c => c.HostId == host.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        await Db.Hosts.Where(h => h.Id == host.Id).ExecuteDeleteAsync(cancellationToken).ConfigureAwait(false);
        return new HostDeletedView(host.Name, assignments);
    }

    public async Task<ClientTargetView> GetClientTargetAsync(string name, CancellationToken cancellationToken)
    {
        var host = await FindHostForAsync(AccessActions.HostsRead, name, cancellationToken).ConfigureAwait(false);

        // The label the caller asked for when it is one of the host's names (name or alias), else the host's name.
        var label = DirectoryService.NormalizeName(name.Trim());
        if (!string.Equals(label, host.Name, StringComparison.Ordinal)
            && !await Db.HostAliases.AnyAsync(a => a.HostId == host.Id && a.Name == label, cancellationToken).ConfigureAwait(false))
        {
            label = host.Name;
        }

        var info = gateway();
        return new ClientTargetView(host.Name, label, info.PublicName, Gatehouse.Hosting.GatehouseHost.PublicHost(info.PublicName), info.RdpPort, info.CertificateSha256);
    }

    // Host groups (tenant scope).
    public async Task<IReadOnlyList<HostGroupView>> ListHostGroupsAsync(CancellationToken cancellationToken)
    {
        Caller.Require(HostGroupsRead, Scope.Tenant);
        var groups = await Db.HostGroups.AsNoTracking().Where(g => g.TenantId == Tenant).OrderBy(g => g.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
        var hosts = await Db.Hosts.AsNoTracking().Where(h => h.TenantId == Tenant && h.HostGroupId != null).Select(h => new { h.Name, h.HostGroupId }).ToListAsync(cancellationToken).ConfigureAwait(false);
        return [.. groups.Select(g => new HostGroupView(g.Id, g.Name, $"/hostGroups/{g.Name}", [.. hosts.Where(h => h.HostGroupId == g.Id).Select(h => h.Name).Order(StringComparer.Ordinal)]))];
    }

    public async Task<HostGroupView> CreateHostGroupAsync(string name, CancellationToken cancellationToken)
    {
        Caller.Require(HostGroupsWrite, Scope.Tenant);
        if (string.IsNullOrWhiteSpace(name) || !Scope.TryParse($"/hostGroups/{name}", out _, out _))
        {
            throw AdminProblemException.BadRequest($"'{name}' cannot be a host group name: use letters, digits, '-', '_' and '.' (it becomes the scope /hostGroups/{name}).");
        }

        var normalized = DirectoryService.NormalizeName(name);
        if (await Db.HostGroups.AnyAsync(g => g.TenantId == Tenant && g.Name == normalized, cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"A host group '{normalized}' already exists; 'gatehouse hostgroup list' shows them.");
        }

        try
        {
            var group = await Directory.CreateHostGroupAsync(Tenant, name, cancellationToken).ConfigureAwait(false);
            return new HostGroupView(group.Id, group.Name, $"/hostGroups/{group.Name}", []);
        }
        catch (ArgumentException e)
        {
            throw AdminProblemException.BadRequest(Sentence(e) + " Use letters, digits and '-'.");
        }
    }

    /// <summary>
    /// Connects to the host's backend as the gateway does (TCP, X.224 with the mapped account's cookie, TLS), from where
    /// the operation runs (the server, over the API), then checks that the stored passwords decrypt (never returned).
    /// </summary>
    public async Task<HostTestView> TestHostAsync(string name, int timeoutSeconds, CancellationToken cancellationToken)
    {
        if (timeoutSeconds is < 1 or > 300)
        {
            throw AdminProblemException.BadRequest("--timeout must be between 1 and 300 seconds.");
        }

        var host = await FindHostForAsync(HostsTest, name, cancellationToken).ConfigureAwait(false);
        var backend = FormatBackend(host.BackendHost, host.BackendPort);
        var report = new TestReport();
        var ok = await RunHostTestAsync(host, backend, TimeSpan.FromSeconds(timeoutSeconds), report, cancellationToken).ConfigureAwait(false);
        return new HostTestView(host.Name, backend, host.BackendSecurity.ToString().ToLowerInvariant(), ok, report.Steps, report.FailedStep, report.FailedFix);
    }

    private async Task<bool> RunHostTestAsync(Host host, string backend, TimeSpan timeout, TestReport report, CancellationToken cancellationToken)
    {
        var security = host.BackendSecurity == BackendSecurity.Nla ? BackendTarget.NlaProtocols : SecurityProtocol.Ssl;

        // Checked against the trusted key as the gateway does; a host without one gets the key it presents now (trust on first use).
        var target = TargetOf(host) with
        {
            CertificatePin = host.CertificatePin,
            FirstUse = host.CertificatePin is null ? new Gatehouse.Identity.Gateway.DirectoryHostKeyFirstUse(Directory, host, "host test") : null,
        };
        var result = await BackendConnector.ConnectAsync(target, timeout, cancellationToken).ConfigureAwait(false);
        switch (result.Failure)
        {
            case BackendFailure.Unreachable:
                return report.Fail("TCP", result.Reason,
                    $"check that the host is running and that the gateway reaches {backend} (address and port in 'gatehouse host show', firewalls; xrdp listens on 3389 by default).");
            case BackendFailure.Protocol:
                report.Ok("TCP", $"connected to {backend}");
                return report.Fail("X.224", result.Reason, $"{backend} does not answer like an RDP server; check the backend address and port ('gatehouse host show {host.Name}').");
            case BackendFailure.Negotiation:
                report.Ok("TCP", $"connected to {backend}");
                return report.Fail("X.224", result.Reason, security == SecurityProtocol.Ssl
                    ? "let the host accept TLS (xrdp.ini: security_layer=tls or negotiate, with a certificate and key_file), or register the host with the security it offers."
                    : "let the host accept NLA (CredSSP), or register it with --backend-security tls if it is an xrdp host.");
            case BackendFailure.NlaNotOffered:
                report.Ok("TCP", $"connected to {backend}");
                return report.Fail("X.224", result.Reason,
                    $"the host does not speak NLA: register it with --backend-security tls ('gatehouse host delete {host.Name}', then 'gatehouse host create … --backend-security tls'), or turn NLA on at the host.");
            case BackendFailure.Tls:
                report.Ok("TCP", $"connected to {backend}");
                report.Ok("X.224", $"the host selected {Describe(security)}");
                return report.Fail("TLS", result.Reason, "check the host's TLS certificate and key (xrdp.ini certificate= and key_file=, readable by xrdp) and that it allows TLS 1.2 or newer.");
            case BackendFailure.CertificateChanged or BackendFailure.CertificateNotTrusted:
                report.Ok("TCP", $"connected to {backend}");
                report.Ok("X.224", $"the host selected {Describe(security)}");
                var fix = BackendAdvice.Fix(result, host.Name, target);
                return report.Fail("TLS", result.Reason, char.ToLowerInvariant(fix[0]) + fix[1..]);
            default:
                break;
        }

        string trustedKey;
        await using (var connection = result.Connection!)
        {
            trustedKey = connection.HostKey;
            report.Ok("TCP", $"connected to {backend}");
            report.Ok("X.224", $"the host selected {Describe(connection.Selected)}");
            report.Ok("TLS", $"{TlsVersion(connection.Stream.SslProtocol)}, host key {connection.HostKey}");
            report.Ok("host key", connection.TrustedOnFirstUse
                ? $"trusted on first use: {connection.HostKey} (no key was trusted for {host.Name}; check it against the host's, 'gatehouse host trust {host.Name}' replaces it)"
                : $"the host presented the trusted key {connection.HostKey}");
        }

        var accounts = new List<(string Role, string Account, string Password)>();
        foreach (var (role, account, secret) in new[] { ("admin", host.AdminAccountName, host.AdminSecretProtected), ("user", host.UserAccountName, host.UserSecretProtected) })
        {
            if (account is null)
            {
                report.Note("credentials", $"no {role} account mapped ({(role == "admin" ? "Virtual Machine Administrator Login" : "Virtual Machine User Login")} sign-ins are refused)");
                continue;
            }

            if (secret is null)
            {
                return report.Fail("credentials", $"the {role} account {account} has no stored password",
                    $"register the host again with --{role}-account {account} and its password ('gatehouse host delete {host.Name}', then 'gatehouse host create').");
            }

            string password;
            try
            {
                password = Directory.UnprotectHostSecret(secret);
            }
            catch (Exception e) when (e is CryptographicException or FormatException)
            {
                return report.Fail("credentials", $"the {role} account {account}'s stored password cannot be decrypted with this server's Data Protection keys",
                    $"run the command with the server's own --data directory (its keys folder and key-encryption key file) or --store; if the keys were lost, register the host again with the password ('gatehouse host delete {host.Name}', then 'gatehouse host create').");
            }

            if (password.Length == 0)
            {
                return report.Fail("credentials", $"the {role} account {account}'s stored password is empty", $"register the host again with the {role} account's password.");
            }

            report.Ok("credentials", $"{role} account {account}: the stored password decrypts");
            accounts.Add((role, account, password));
        }

        if (accounts.Count == 0)
        {
            return report.Fail("credentials", "the host has no mapped account", "register the host with --admin-account and/or --user-account and their passwords.");
        }

        if (host.BackendSecurity == BackendSecurity.Nla)
        {
            // The CredSSP logon is where an NLA host checks the password, so each account is really tried (no session opens).
            var allOk = true;
            foreach (var (role, account, password) in accounts)
            {
                var (domain, user) = AccessService.SplitAccount(account);
                var logon = await BackendConnector.ConnectAsync(
                    new BackendTarget(host.BackendHost, host.BackendPort, security, user) { CertificatePin = trustedKey },
                    new InjectedCredentials(domain, user, password),
                    timeout,
                    cancellationToken).ConfigureAwait(false);
                if (logon.Connection is { } connection)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    report.Ok("logon", $"{role} account {account}: the host accepted the NLA (CredSSP) logon");
                    continue;
                }

                allOk = false;
                report.Fail("logon", $"{role} account {account}: {logon.Reason}", logon.Failure == BackendFailure.Logon
                    ? $"re-enter the {role} account's password (register the host again: 'gatehouse host delete {host.Name}', then 'gatehouse host create' with --{role}-account {account} and the right password), or check the account on the host (enabled, not locked, allowed to log on remotely)."
                    : BackendAdvice.Fix(logon, host.Name, new BackendTarget(host.BackendHost, host.BackendPort, security, user)));
            }

            return allOk;
        }

        report.Note("logon", LogonNote);
        return true;
    }

    /// <summary>
    /// <c>host trust</c>: connects to the host's backend, reads the key it presents and, when it is the one the operator
    /// gave (checked on the host), trusts it from now on in place of the old one; with <c>dryRun</c> only shows it.
    /// </summary>
    public async Task<HostTrustView> TrustHostAsync(string name, HostTrustRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var seconds = request.TimeoutSeconds ?? 10;
        if (seconds is < 1 or > 300)
        {
            throw AdminProblemException.BadRequest("--timeout must be between 1 and 300 seconds.");
        }

        var host = await FindHostForAsync(AccessActions.HostsWrite, name, cancellationToken).ConfigureAwait(false);
        string? expected = null;
        if (!string.IsNullOrWhiteSpace(request.Fingerprint) && !HostKeyFingerprint.TryParse(request.Fingerprint, out expected))
        {
            throw AdminProblemException.BadRequest($"'{request.Fingerprint.Trim()}' is not a host key fingerprint: give SHA256: and the base64 of the SHA-256 of the host certificate's public key (SubjectPublicKeyInfo), as 'gatehouse host show' and the sign-in log print it.");
        }

        if (expected is null && !request.DryRun)
        {
            throw AdminProblemException.BadRequest($"Give the key you checked on the host: --fingerprint SHA256:… (fingerprint over the API). 'gatehouse host trust {host.Name}' without it shows the key {host.Name} presents now and asks before trusting it (dryRun: true over the API).");
        }

        var backend = FormatBackend(host.BackendHost, host.BackendPort);
        var result = await BackendConnector.ConnectAsync(TargetOf(host), TimeSpan.FromSeconds(seconds), cancellationToken).ConfigureAwait(false);
        if (result.Connection is not { } connection)
        {
            throw new AdminProblemException(StatusCodes.Status502BadGateway, "Host unreachable",
                $"The key of {host.Name} could not be read, so nothing was changed: {result.Reason}. {BackendAdvice.Fix(result, host.Name, TargetOf(host))}");
        }

        var presented = connection.HostKey;
        await connection.DisposeAsync().ConfigureAwait(false);
        var previous = host.CertificatePin;
        var changed = !HostKeyFingerprint.Matches(previous, presented);
        if (expected is not null && !HostKeyFingerprint.Matches(expected, presented))
        {
            throw AdminProblemException.Conflict(
                $"{host.Name} ({backend}) presents the key {presented}, not {expected} that you gave, so nothing was changed. If {expected} is what the host itself shows, something between the gateway and the host presents another key.");
        }

        if (request.DryRun)
        {
            return new HostTrustView(host.Name, backend, presented, previous, Trusted: false, changed, host.CertificatePinnedAt);
        }

        if (!await Directory.SetHostCertificatePinAsync(host.Id, host.BackendHost, host.BackendPort, host.BackendSecurity, presented, "host trust", cancellationToken).ConfigureAwait(false))
        {
            throw AdminProblemException.Conflict($"{host.Name}'s backend changed while its key was read, so nothing was changed; run 'gatehouse host trust {host.Name}' again.");
        }

        return new HostTrustView(host.Name, backend, presented, previous, Trusted: true, changed, Now);
    }

    /// <summary>How the gateway reaches <paramref name="host"/>, with the X.224 cookie of the account a regular sign-in gets (no key check).</summary>
    private static BackendTarget TargetOf(Host host)
    {
        var security = host.BackendSecurity == BackendSecurity.Nla ? BackendTarget.NlaProtocols : SecurityProtocol.Ssl;
        var cookieAccount = host.UserAccountName ?? host.AdminAccountName;
        var cookie = cookieAccount is null ? string.Empty : AccessService.SplitAccount(cookieAccount).Name;
        return new BackendTarget(host.BackendHost, host.BackendPort, security, cookie);
    }

    /// <summary>
    /// Reads and trusts the key of a host that has none (after <c>host create</c>, or <c>host update</c> to a new
    /// backend): trust on first use, as the operator registers the host. Returns the sentence for the operator.
    /// </summary>
    private async Task<string> TrustFirstKeyAsync(Host host, string pinnedBy, CancellationToken cancellationToken)
    {
        var target = TargetOf(host) with { FirstUse = new Gatehouse.Identity.Gateway.DirectoryHostKeyFirstUse(Directory, host, pinnedBy) };
        var result = await BackendConnector.ConnectAsync(target, FirstKeyTimeout, cancellationToken).ConfigureAwait(false);
        if (result.Connection is { } connection)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            return $"trusted on first use: {connection.HostKey}, the TLS key {FormatBackend(host.BackendHost, host.BackendPort)} presented now; check it against the host's ('gatehouse host trust {host.Name}' replaces it).";
        }

        return $"no TLS key recorded yet ({result.Reason}): the gateway's first connection to the host will trust the key it presents (trust on first use); record it sooner with 'gatehouse host test {host.Name}' once the host is up.";
    }

    private static string Describe(SecurityProtocol protocol) => protocol switch
    {
        SecurityProtocol.Ssl => "TLS (PROTOCOL_SSL)",
        SecurityProtocol.Hybrid => "NLA (PROTOCOL_HYBRID)",
        SecurityProtocol.HybridEx => "NLA (PROTOCOL_HYBRID_EX)",
        _ => protocol.ToString(),
    };

    private static string TlsVersion(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls12 => "TLS 1.2",
        SslProtocols.Tls13 => "TLS 1.3",
        _ => protocol.ToString(),
    };

    private static BackendSecurity? ParseSecurity(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "tls" => BackendSecurity.Tls,
        "nla" => BackendSecurity.Nla,
        _ => throw AdminProblemException.BadRequest($"The backend security '{text}' is not tls or nla."),
    };

    internal static string FormatBackend(string host, int port) => Gatehouse.Identity.Gateway.HostKeyTrust.FormatBackend(host, port);

    private static void RequirePasswordsForNewBackend(Host host, UpdateHostRequest request)
    {
        var missing = new List<string>();
        if (host.AdminAccountName is not null && string.IsNullOrEmpty(request.AdminPassword))
        {
            missing.Add($"the admin account {host.AdminAccountName}'s (--admin-password-stdin or --admin-password-file FILE; adminPassword over the API)");
        }

        if (host.UserAccountName is not null && string.IsNullOrEmpty(request.UserPassword))
        {
            missing.Add($"the user account {host.UserAccountName}'s (--user-password-stdin or --user-password-file FILE; userPassword over the API)");
        }

        if (missing.Count > 0)
        {
            throw AdminProblemException.BadRequest(
                $"Changing the backend address, port or security of {host.Name} sends the stored account passwords to the new backend, so the same update must give them again: re-enter {string.Join(" and ", missing)} password. Nothing was changed.");
        }
    }

    private (string? Name, string? Secret) UpdateAccount(string which, string? name, string? secret, string? newName, string? newPassword)
    {
        if (newName is not null && newName.Trim().Length == 0)
        {
            return newPassword is null ? (null, null) : throw AdminProblemException.BadRequest($"A {which} password was given while removing the {which} account; give one or the other.");
        }

        var account = NullIfEmpty(newName) ?? name;
        if (newName is not null && newName.Trim() != name && string.IsNullOrEmpty(newPassword))
        {
            throw AdminProblemException.BadRequest($"A new {which} account needs its password (--{which}-password-stdin or --{which}-password-file FILE).");
        }

        if (!string.IsNullOrEmpty(newPassword))
        {
            return account is null
                ? throw AdminProblemException.BadRequest($"A {which} password was given without --{which}-account NAME; name the account it belongs to.")
                : (account, Directory.ProtectHostSecret(newPassword));
        }

        return (account, secret);
    }

    private async Task RefuseUsedNamesAsync(IEnumerable<string> labels, Guid? except, CancellationToken cancellationToken)
    {
        foreach (var label in labels)
        {
            if (RdpScope.TryValidateLabel(label, out var normalized, out _)
                && (await Db.Hosts.AnyAsync(h => h.Name == normalized && h.Id != except, cancellationToken).ConfigureAwait(false)
                    || await Db.HostAliases.AnyAsync(a => a.Name == normalized && a.HostId != except, cancellationToken).ConfigureAwait(false)))
            {
                throw AdminProblemException.Conflict($"The name '{normalized}' is already used by a host or alias; 'gatehouse host list' shows them (delete the old host first to replace it).");
            }
        }
    }

    private async Task<List<HostView>> LoadHostsAsync(Guid? only, CancellationToken cancellationToken)
    {
        var query = Db.Hosts.AsNoTracking().Include(h => h.Aliases).Where(h => h.TenantId == Tenant);
        if (only is { } id)
        {
            query = query.Where(h => h.Id == id);
        }

        var hosts = await query.OrderBy(h => h.Name).ToListAsync(cancellationToken).ConfigureAwait(false);
        var groups = await Db.HostGroups.AsNoTracking().Where(g => g.TenantId == Tenant).ToDictionaryAsync(g => g.Id, g => g.Name, cancellationToken).ConfigureAwait(false);
        var agents = await Db.HostAgents.AsNoTracking().Where(a => a.TenantId == Tenant).ToDictionaryAsync(a => a.HostId, cancellationToken).ConfigureAwait(false);
        var now = Now;
        return [.. hosts.Select(h => new HostView(
            h.Id,
            h.Name,
            [.. h.Aliases.Select(a => a.Name).Order(StringComparer.Ordinal)],
            FormatBackend(h.BackendHost, h.BackendPort),
            h.BackendHost,
            h.BackendPort,
            h.BackendSecurity.ToString().ToLowerInvariant(),
            h.HostGroupId is { } g ? groups.GetValueOrDefault(g) : null,
            h.AdminAccountName,
            h.AdminSecretProtected is not null,
            h.UserAccountName,
            h.UserSecretProtected is not null,
            h.CreatedAt)
        {
            CertificatePin = h.CertificatePin,
            CertificatePinnedAt = h.CertificatePinnedAt,
            CertificatePinnedBy = h.CertificatePinnedBy,
            Agent = agents.TryGetValue(h.Id, out var agent)
                ? Gatehouse.Agents.AgentRegistry.Unhealthy(agent, h.Name, now) is { } reason ? reason.Split(':')[0] : "healthy"
                : "none",
        })];
    }

    /// <summary>The steps of a host test.</summary>
    private sealed class TestReport
    {
        public List<HostTestStep> Steps { get; } = [];

        public string? FailedStep { get; private set; }

        public string? FailedFix { get; private set; }

        public void Ok(string step, string detail) => Steps.Add(new HostTestStep("ok", step, detail, null));

        public void Note(string step, string detail) => Steps.Add(new HostTestStep("note", step, detail, null));

        public bool Fail(string step, string detail, string fix)
        {
            FailedStep = step;
            FailedFix = char.ToUpperInvariant(fix[0]) + fix[1..];
            Steps.Add(new HostTestStep("FAIL", step, detail, fix));
            return false;
        }
    }
}
