using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol.CredSsp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Backend;

/// <summary>
/// The target leg's NLA logon: drives <see cref="CredSspClient"/> over the host's TLS stream with the injected account,
/// bound to the SubjectPublicKey of the certificate this TLS session presented, and under HYBRID_EX reads and consumes
/// the [MS-RDPBCGR] 2.2.10.2 Early User Authorization Result PDU (it is not forwarded to the client). Every failure is
/// typed: <see cref="BackendFailure.Logon"/> when the host refused the account, <see cref="BackendFailure.CredSsp"/>
/// otherwise. The password never appears in a reason.
/// </summary>
internal static class BackendCredSsp
{
    /// <summary>NTSTATUS values that mean "this account cannot log on" (rather than a protocol problem).</summary>
    private static readonly HashSet<uint> AccountStatuses =
    [
        NtStatus.LogonFailure, NtStatus.AccessDenied, NtStatus.AccountDisabled, NtStatus.AccountLockedOut, NtStatus.PasswordMustChange,
        0xC0000071 /* PASSWORD_EXPIRED */, 0xC000006E /* ACCOUNT_RESTRICTION */, 0xC000006F /* INVALID_LOGON_HOURS */,
        0xC0000193 /* ACCOUNT_EXPIRED */, 0xC000015B /* LOGON_TYPE_NOT_GRANTED */, 0x8009030C /* SEC_E_LOGON_DENIED */,
    ];

    public static async Task<(BackendFailure Failure, string Reason)> LogonAsync(
        Stream tls, X509Certificate2 certificate, InjectedCredentials credentials, SecurityProtocol selected, BackendTarget target, CancellationToken cancellationToken)
    {
        var where = $"{target.Host}:{target.Port}";
        var account = credentials.ToString();
        var settings = new CredSspClientSettings(credentials.Domain, credentials.UserName, credentials.Password, certificate.PublicKey.EncodedKeyValue.RawData)
        {
            TargetName = $"TERMSRV/{target.Host}",
        };
        var random = new CredSspClientRandom(RandomNumberGenerator.GetBytes(TsRequest.NonceSize), RandomNumberGenerator.GetBytes(8), RandomNumberGenerator.GetBytes(16), DateTime.UtcNow.ToFileTimeUtc());
        var client = new CredSspClient(settings, random);
        await WriteAsync(tls, client.Start(), cancellationToken).ConfigureAwait(false);
        while (client.State != CredSspClientState.Completed)
        {
            var stage = client.State == CredSspClientState.WaitingForChallenge ? "negotiate" : "authenticate";
            var (frame, problem) = await TsRequestFraming.ReadAsync(tls, cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return problem is not null
                    ? (BackendFailure.CredSsp, $"backend_credssp: {where} sent a malformed CredSSP message: {problem}")
                    : stage == "authenticate"
                        ? (BackendFailure.Logon, $"backend_logon_failed: {where} closed the connection after the NTLM AUTHENTICATE of account {account}, which is how some hosts (FreeRDP) refuse a wrong password: the password stored for {account} is most likely wrong")
                        : (BackendFailure.CredSsp, $"backend_credssp: {where} closed the connection before answering the NLA NEGOTIATE");
            }

            var step = client.Step(frame);
            if (step.Failed)
            {
                return Map(step.Error, where, account);
            }

            await WriteAsync(tls, step.Output!, cancellationToken).ConfigureAwait(false);
        }

        if (selected != SecurityProtocol.HybridEx)
        {
            return (BackendFailure.None, "logged on");
        }

        // HYBRID_EX: the host says whether the account may log on before the connection sequence goes on.
        var result = new byte[4];
        try
        {
            await tls.ReadExactlyAsync(result, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            return (BackendFailure.Logon, $"backend_logon_failed: {where} closed the connection instead of sending the Early User Authorization Result for account {account}: the password stored for it is most likely wrong");
        }

        var value = BinaryPrimitives.ReadUInt32LittleEndian(result);
        return value == NtStatus.AuthzSuccess
            ? (BackendFailure.None, "logged on")
            : (BackendFailure.Logon, $"backend_logon_failed: {where} accepted the password of account {account} but its Early User Authorization Result is 0x{value:X8}{(value == NtStatus.AuthzAccessDenied ? " (AUTHZ_ACCESS_DENIED)" : string.Empty)}: the account may not log on remotely (on Windows: add it to Remote Desktop Users)");
    }

    private static (BackendFailure, string) Map(CredSspClientError error, string where, string account) => error.Kind switch
    {
        CredSspClientFailure.ServerError when error.Status is { } status && (AccountStatuses.Contains(status) || (status == NtStatus.MessageAltered && error.Stage == "authenticate")) =>
            (BackendFailure.Logon, $"backend_logon_failed: {where} refused the stored account {account} with {CredSspClient.Describe(status)}: the password stored for {account} is wrong, or the account is disabled, locked or may not log on"),
        CredSspClientFailure.ServerError when error.Stage == "authenticate" =>
            (BackendFailure.Logon, $"backend_logon_failed: {where} refused the NTLM AUTHENTICATE of the stored account {account} with {CredSspClient.Describe(error.Status ?? 0)} (FreeRDP hosts answer a wrong password this way): the password stored for {account} is most likely wrong"),
        CredSspClientFailure.ServerError =>
            (BackendFailure.CredSsp, $"backend_credssp: {where} ended the NLA logon of {account} with {error}"),
        CredSspClientFailure.ServerNotAuthenticated =>
            (BackendFailure.CredSsp, $"backend_credssp: {where} did not prove itself during the NLA logon, so the credentials of {account} were not sent: {error.Reason}"),
        CredSspClientFailure.Unsupported =>
            (BackendFailure.CredSsp, $"backend_credssp: {where} wants an NLA variant the gateway does not speak: {error.Reason}"),
        _ => (BackendFailure.CredSsp, $"backend_credssp: {where}: {error.Reason}"),
    };

    private static async Task WriteAsync(Stream tls, byte[] bytes, CancellationToken cancellationToken)
    {
        await tls.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await tls.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
