namespace Gatehouse.Gateway.Backend;

/// <summary>What an administrator does about each <see cref="BackendFailure"/> (the sign-in log's "fix").</summary>
public static class BackendAdvice
{
    /// <summary>The fix for <paramref name="result"/>'s failure on host <paramref name="hostName"/> at <paramref name="target"/> (with the host's keys when they are the problem).</summary>
    public static string Fix(BackendConnectResult result, string hostName, BackendTarget target)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(target);
        return result.Failure switch
        {
            BackendFailure.CertificateChanged =>
                $"The TLS key of {target.Host}:{target.Port} is not the one trusted for {hostName} ({result.TrustedKey}): someone may be between the gateway and the host, or the host got a new key. Check the key on the host; only if it is {result.PresentedKey}, trust it with 'gatehouse host trust {hostName} --fingerprint {result.PresentedKey}'.",
            BackendFailure.CertificateNotTrusted =>
                $"{hostName} has no trusted TLS key yet and the one it presented ({result.PresentedKey}) could not be recorded: check the store, then record the key with 'gatehouse host test {hostName}', or 'gatehouse host trust {hostName} --fingerprint {result.PresentedKey}' after checking it on the host.",
            _ => Fix(result.Failure, hostName, target),
        };
    }

    /// <summary>The fix for <paramref name="failure"/> on host <paramref name="hostName"/> at <paramref name="target"/>.</summary>
    public static string Fix(BackendFailure failure, string hostName, BackendTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return failure switch
        {
            BackendFailure.Logon => $"The host refused the account the gateway logs on with: re-enter that account's password (register the host again: 'gatehouse host delete {hostName}', then 'gatehouse host create' with the right password) and check it with 'gatehouse host test {hostName}'.",
            BackendFailure.NlaNotOffered => $"{hostName} does not speak NLA: register it with --backend-security tls ('gatehouse host delete {hostName}', then 'gatehouse host create … --backend-security tls'), or turn NLA on at the host.",
            BackendFailure.CredSsp => $"The NLA logon to {target.Host}:{target.Port} failed; 'gatehouse host test {hostName}' shows the step (a host that does not prove itself may sit behind a TLS interceptor).",
            BackendFailure.CertificateChanged => $"The TLS key of {target.Host}:{target.Port} is not the one trusted for {hostName}: check the key on the host, then 'gatehouse host trust {hostName}'.",
            BackendFailure.CertificateNotTrusted => $"{hostName} has no trusted TLS key yet: record it with 'gatehouse host test {hostName}' or 'gatehouse host trust {hostName}'.",
            _ => $"Check that {target.Host}:{target.Port} is up and reachable from the gateway ('gatehouse host test {hostName}').",
        };
    }
}
