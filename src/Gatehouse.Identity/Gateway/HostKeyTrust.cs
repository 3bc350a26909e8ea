using System.Globalization;
using Gatehouse.Gateway.Backend;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

using Host = Gatehouse.Storage.Host;

namespace Gatehouse.Identity.Gateway;

/// <summary>
/// Pins the gateway's host legs: every target carries the host's trusted TLS key, and a host that has none yet (a host
/// registered while it was unreachable, or before keys were recorded) gets the key its first leg meets recorded (trust
/// on first use), before any credential is sent; that is logged as a warning naming the key.
/// </summary>
public sealed partial class HostKeyTrust(IServiceScopeFactory scopes, ILogger<HostKeyTrust> logger)
{
    /// <summary><see cref="Host.CertificatePinnedBy"/> of a key recorded by a gateway connection.</summary>
    public const string ByConnection = "connection";

    private IServiceScopeFactory Scopes => scopes;

    /// <summary><paramref name="target"/> with <paramref name="host"/>'s trusted key, or the recorder of its first one.</summary>
    public BackendTarget Pin(BackendTarget target, Host host)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(host);
        return target with
        {
            CertificatePin = host.CertificatePin,
            FirstUse = host.CertificatePin is null ? new FirstUse(this, host) : null,
        };
    }

    /// <summary><c>host:port</c>, an IPv6 address in brackets (as <c>gatehouse host show</c> writes it).</summary>
    public static string FormatBackend(string host, int port)
    {
        ArgumentNullException.ThrowIfNull(host);
        return host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port.ToString(CultureInfo.InvariantCulture)}" : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";
    }

    [LoggerMessage(90, LogLevel.Warning, "Host {Host}: no TLS key was trusted for {Backend}; the gateway's first connection trusted {Key} (trust on first use). Check it against the host's key ('gatehouse host show {Host}'; 'gatehouse host trust {Host}' replaces it).")]
    private partial void LogTrustedOnFirstUse(string host, string backend, string key);

    /// <summary>Records the key of one host in a scope of its own (a gateway connection has no store scope).</summary>
    private sealed class FirstUse(HostKeyTrust owner, Host host) : IHostKeyFirstUse
    {
        /// <inheritdoc/>
        public async Task<string?> RecordAsync(string presented, CancellationToken cancellationToken)
        {
            await using var scope = owner.Scopes.CreateAsyncScope();
            var directory = scope.ServiceProvider.GetRequiredService<DirectoryService>();
            var trusted = await new DirectoryHostKeyFirstUse(directory, host, ByConnection).RecordAsync(presented, cancellationToken).ConfigureAwait(false);
            if (trusted is not null && HostKeyFingerprint.Matches(trusted, presented))
            {
                owner.LogTrustedOnFirstUse(host.Name, FormatBackend(host.BackendHost, host.BackendPort), presented);
            }

            return trusted;
        }
    }
}

/// <summary>Records a host's first key through <paramref name="directory"/>, as <paramref name="pinnedBy"/> (host create, host update, host test, connection).</summary>
public sealed class DirectoryHostKeyFirstUse(DirectoryService directory, Host host, string pinnedBy) : IHostKeyFirstUse
{
    /// <inheritdoc/>
    public Task<string?> RecordAsync(string presented, CancellationToken cancellationToken) =>
        directory.RecordHostCertificateOnFirstUseAsync(host.Id, host.BackendHost, host.BackendPort, host.BackendSecurity, presented, pinnedBy, cancellationToken);
}
