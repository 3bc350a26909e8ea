using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Backend;

/// <summary>How the gateway reaches a host.</summary>
public sealed record BackendTarget(string Host, int Port, SecurityProtocol Security, string CookieUser)
{
    /// <summary>
    /// The host's trusted key (<see cref="HostKeyFingerprint"/>): a host leg whose TLS key is another is refused
    /// (<see cref="BackendFailure.CertificateChanged"/>) before any credential is sent. Null: none is recorded yet.
    /// </summary>
    public string? CertificatePin { get; init; }

    /// <summary>
    /// Records the key a host without <see cref="CertificatePin"/> presents (trust on first use), before any credential
    /// is sent. Null with no pin: the key is only reported (<c>gatehouse host test</c> and <c>host trust</c> read it so).
    /// </summary>
    public IHostKeyFirstUse? FirstUse { get; init; }

    /// <summary>
    /// The name the host leg's TLS gives the host (SNI) when <see cref="Host"/> is an IP address: the host's registered
    /// name. With a name, .NET shares one TLS client context between the legs and resumes TLS sessions with the host
    /// (as it does for a host reached by DNS name); with an address it builds a context per connection, which an idle
    /// session keeps (about 8 KiB; docs/benchmarks.md). Ignored when <see cref="Host"/> is a DNS name (that name is
    /// used) or when this is not a valid DNS name. Null: none (an address gets no SNI, as before).
    /// </summary>
    public string? TlsServerName { get; init; }

    /// <summary>The TLS target name of the host leg: <see cref="Host"/>, or <see cref="TlsServerName"/> for a host reached by address.</summary>
    public string TlsTargetName =>
        System.Net.IPAddress.TryParse(Host, out _) && TlsServerName is { Length: > 0 } name && Uri.CheckHostName(name) == UriHostNameType.Dns
            ? name
            : Host;

    /// <summary>True for an NLA host: the gateway asks for PROTOCOL_HYBRID (and HYBRID_EX) and logs on with CredSSP.</summary>
    public bool IsNla => (Security & (SecurityProtocol.Hybrid | SecurityProtocol.HybridEx)) != 0;

    /// <summary>The protocols the gateway asks an NLA host for.</summary>
    public const SecurityProtocol NlaProtocols = SecurityProtocol.Hybrid | SecurityProtocol.HybridEx;
}

/// <summary>Records the key of a host that has none recorded yet (trust on first use).</summary>
public interface IHostKeyFirstUse
{
    /// <summary>
    /// Records <paramref name="presented"/> as the host's key unless one was recorded meanwhile, and returns the key that
    /// is trusted from now on (the one recorded first wins); null when the host's registration changed or went away.
    /// </summary>
    Task<string?> RecordAsync(string presented, CancellationToken cancellationToken);
}

/// <summary>Why the backend could not be reached (the sign-in log's <c>backend_*</c> reasons).</summary>
public enum BackendFailure
{
    /// <summary>Connected.</summary>
    None,

    /// <summary>No TCP connection within the deadline, or refused.</summary>
    Unreachable,

    /// <summary>The host refused the negotiation or selected another protocol.</summary>
    Negotiation,

    /// <summary>The host's X.224 answer is malformed.</summary>
    Protocol,

    /// <summary>TLS failed.</summary>
    Tls,

    /// <summary>The host's TLS key is not the trusted one (a man in the middle, or a new key on the host): no credential was sent.</summary>
    CertificateChanged,

    /// <summary>The host has no trusted key yet and the one it presented could not be recorded: no credential was sent.</summary>
    CertificateNotTrusted,

    /// <summary>The NLA host does not offer NLA (it answered with a failure code or selected TLS only).</summary>
    NlaNotOffered,

    /// <summary>The NLA host refused the injected account (wrong stored password, account disabled, locked or not allowed to log on remotely).</summary>
    Logon,

    /// <summary>CredSSP with the NLA host failed otherwise: a malformed or unexpected message, no answer, or a host that did not prove itself (a man in the middle).</summary>
    CredSsp,
}

/// <summary>A connected backend leg: the TLS stream after the X.224 exchange, and the key the host presented (<see cref="HostKeyFingerprint"/>).</summary>
public sealed record BackendConnection(SslStream Stream, SecurityProtocol Selected, string HostKey) : IAsyncDisposable
{
    /// <summary>True when the host had no trusted key when this connection began and <see cref="HostKey"/> is now trusted (trust on first use).</summary>
    public bool TrustedOnFirstUse { get; init; }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Stream.DisposeAsync();
}

/// <summary>The result of <see cref="BackendConnector.ConnectAsync(BackendTarget, Relay.InjectedCredentials?, TimeSpan, CancellationToken, TimeProvider?)"/>.</summary>
public sealed record BackendConnectResult(BackendConnection? Connection, BackendFailure Failure, string Reason)
{
    /// <summary>True when connected.</summary>
    public bool Connected => Connection is not null;

    /// <summary>The key the host presented, when the failure is about it (<see cref="BackendFailure.CertificateChanged"/>).</summary>
    public string? PresentedKey { get; init; }

    /// <summary>The key trusted for the host, when the failure is about it.</summary>
    public string? TrustedKey { get; init; }
}

/// <summary>
/// Opens the target leg to a host as the gateway's RDP client: TCP within the backend deadline, an X.224 Connection
/// Request with the mapped account's cookie and the backend's protocol (TLS for xrdp-style hosts, HYBRID and HYBRID_EX
/// for NLA hosts), the host's Connection Confirm, TLS, the host's key checked against the trusted one (or recorded, for
/// a host that has none yet: trust on first use) before anything else is sent, and for NLA hosts the CredSSP logon with
/// the injected account (<see cref="BackendCredSsp"/>), all within one deadline.
/// </summary>
public static class BackendConnector
{
    /// <summary>Largest X.224 Connection Confirm accepted from a host (it is 19 bytes).</summary>
    public const int MaxConnectionConfirmBytes = 1024;

    /// <summary>Largest TPKT frame read from a host before the session relay (an MCS Connect Response and its certificates).</summary>
    public const int MaxHostFrameBytes = Protocol.FastPath.RdpFraming.MaxFrameBytes;

    /// <summary>Connects within <paramref name="timeout"/> (an NLA host only up to TLS); failures come back typed, never as exceptions.</summary>
    public static Task<BackendConnectResult> ConnectAsync(BackendTarget target, TimeSpan timeout, CancellationToken cancellationToken, TimeProvider? time = null) =>
        ConnectAsync(target, null, timeout, cancellationToken, time);

    /// <summary>
    /// Connects within <paramref name="timeout"/>; an NLA host is logged on to with <paramref name="credentials"/> by
    /// CredSSP (without them the connection stops after TLS, as <c>gatehouse host test</c>'s first step does). The
    /// deadline runs on <paramref name="time"/> (the system clock when null), so the gateway's clock drives it.
    /// </summary>
    public static async Task<BackendConnectResult> ConnectAsync(BackendTarget target, Relay.InjectedCredentials? credentials, TimeSpan timeout, CancellationToken cancellationToken, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        using var timer = new CancellationTokenSource(timeout, time ?? TimeProvider.System);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        NetworkStream? stream = null;
        try
        {
            try
            {
                await socket.ConnectAsync(target.Host, target.Port, deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                return Fail(BackendFailure.Unreachable, e is SocketException s
                    ? $"backend_unreachable: {target.Host}:{target.Port}: {s.SocketErrorCode}"
                    : $"backend_unreachable: no connection to {target.Host}:{target.Port} within {timeout.TotalSeconds:0} s");
            }

            stream = new NetworkStream(socket, ownsSocket: true);
            var request = new ConnectionRequest(
                tokenKind: ConnectionRequestTokenKind.Cookie,
                tokenValue: target.CookieUser,
                negotiation: new NegotiationRequest(NegotiationRequestFlags.None, target.Security));
            var buffer = new ArrayBufferWriter<byte>(64);
            request.Write(buffer);
            await stream.WriteAsync(buffer.WrittenMemory, deadline.Token).ConfigureAwait(false);

            // Exactly the Connection Confirm's bytes: TLS starts on the same stream right behind it.
            RdpFrame? confirmFrame;
            try
            {
                confirmFrame = await new RdpFrameReader(stream, MaxConnectionConfirmBytes, acceptFastPath: false).ReadAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (RdpFrameException e)
            {
                return Fail(BackendFailure.Protocol, $"backend_protocol: malformed Connection Confirm: {e.Message}");
            }

            if (confirmFrame is not { Bytes: var confirmBytes })
            {
                return Fail(BackendFailure.Protocol, $"backend_protocol: {target.Host}:{target.Port} closed or sent no whole X.224 Connection Confirm");
            }

            if (!ConnectionConfirm.TryParse(confirmBytes, out var confirm, out var error))
            {
                return Fail(BackendFailure.Protocol, $"backend_protocol: malformed Connection Confirm: {error}");
            }

            if (confirm.Result is not { } result)
            {
                return Fail(BackendFailure.Negotiation, "backend_negotiation: the host answered without RDP negotiation (standard RDP security only)");
            }

            if (result.IsFailure)
            {
                return target.IsNla
                    ? Fail(BackendFailure.NlaNotOffered, $"backend_nla_not_offered: {target.Host}:{target.Port} refused NLA (HYBRID) with {result.FailureCode}; the host does not speak NLA: register it with --backend-security tls")
                    : Fail(BackendFailure.Negotiation, $"backend_negotiation: the host refused {target.Security} with {result.FailureCode}; check the host's security setting (tls or nla) in 'gatehouse host show'");
            }

            if (target.IsNla ? result.SelectedProtocol is not (SecurityProtocol.Hybrid or SecurityProtocol.HybridEx) : result.SelectedProtocol != target.Security)
            {
                return target.IsNla
                    ? Fail(BackendFailure.NlaNotOffered, $"backend_nla_not_offered: {target.Host}:{target.Port} selected {result.SelectedProtocol} instead of NLA (HYBRID); the host does not speak NLA: register it with --backend-security tls")
                    : Fail(BackendFailure.Negotiation, $"backend_negotiation: the host selected {result.SelectedProtocol}, not {target.Security}");
            }

            var tls = new SslStream(stream, leaveInnerStreamOpen: false);
            try
            {
                await tls.AuthenticateAsClientAsync(
                    new SslClientAuthenticationOptions
                    {
                        TargetHost = target.TlsTargetName,
                        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                        RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
                    },
                    deadline.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
                return Fail(BackendFailure.Tls, $"backend_tls: TLS with {target.Host}:{target.Port} failed: {e.Message}");
            }

            // Idle, the leg gives OpenSSL's two record buffers back (about 33 KiB: Tls/TlsIdleMemory.cs).
            Tls.TlsIdleMemory.ReleaseBuffersWhenIdle(tls);
            using var certificate = new X509Certificate2(tls.RemoteCertificate!);
            var presented = HostKeyFingerprint.Of(certificate);

            // The host's key, before any credential leaves: the Client Info PDU of a TLS host is written after this
            // returns, and an NLA host's CredSSP (even its NTLM NEGOTIATE) starts only below.
            var (trusted, firstUse, problem) = await CheckHostKeyAsync(target, presented, deadline.Token).ConfigureAwait(false);
            if (problem is not null)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
                return trusted is null
                    ? Fail(BackendFailure.CertificateNotTrusted, problem) with { PresentedKey = presented }
                    : Fail(BackendFailure.CertificateChanged, problem) with { PresentedKey = presented, TrustedKey = trusted };
            }

            if (target.IsNla && credentials is not null)
            {
                (BackendFailure Failure, string Reason) logon;
                try
                {
                    logon = await BackendCredSsp.LogonAsync(tls, certificate, credentials, result.SelectedProtocol, target, deadline.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    logon = e is IOException
                        ? (BackendFailure.CredSsp, $"backend_credssp: {target.Host}:{target.Port} broke the connection during the NLA logon: {e.Message}")
                        : (BackendFailure.CredSsp, $"backend_credssp: {target.Host}:{target.Port} did not finish the NLA logon within {timeout.TotalSeconds:0} s (connection and logon share the backend deadline)");
                }

                if (logon.Failure != BackendFailure.None)
                {
                    await tls.DisposeAsync().ConfigureAwait(false);
                    return Fail(logon.Failure, logon.Reason);
                }
            }

            stream = null;
            socket = null;
            return new BackendConnectResult(new BackendConnection(tls, result.SelectedProtocol, presented) { TrustedOnFirstUse = firstUse }, BackendFailure.None, "connected");
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return Fail(BackendFailure.Unreachable, $"backend_unreachable: {target.Host}:{target.Port}: {e.Message}");
        }
        finally
        {
            if (stream is not null)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }

            socket?.Dispose();
        }
    }

    /// <summary>
    /// Checks <paramref name="presented"/> against the target's trusted key, recording it first when there is none and
    /// the target can (trust on first use). Returns the trusted key, whether this call recorded it, and the refusal (null
    /// when the key may be used; a null trusted key with a refusal: none could be recorded).
    /// </summary>
    private static async Task<(string? Trusted, bool FirstUse, string? Problem)> CheckHostKeyAsync(BackendTarget target, string presented, CancellationToken cancellationToken)
    {
        var where = $"{target.Host}:{target.Port}";
        var trusted = target.CertificatePin;
        var firstUse = false;
        if (trusted is null)
        {
            if (target.FirstUse is not { } recorder)
            {
                return (null, false, null);
            }

            try
            {
                trusted = await recorder.RecordAsync(presented, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                return (null, false, $"backend_certificate_not_trusted: {where} has no trusted key yet and the key it presented ({presented}) could not be recorded ({e.GetType().Name}); no credentials were sent");
            }

            if (trusted is null)
            {
                return (null, false, $"backend_certificate_not_trusted: {where} has no trusted key yet and the host's registration changed while the key it presented ({presented}) was being recorded; no credentials were sent");
            }

            firstUse = HostKeyFingerprint.Matches(trusted, presented);
        }

        return HostKeyFingerprint.Matches(trusted, presented)
            ? (trusted, firstUse, null)
            : (trusted, false, $"backend_certificate_changed: {where} presented the TLS key {presented}, not the trusted {trusted}; no credentials were sent");
    }

    private static BackendConnectResult Fail(BackendFailure failure, string reason) => new(null, failure, reason);
}
