namespace Gatehouse.Gateway.Backend;

/// <summary>What an administrator does about each <see cref="BackendFailure"/> (the sign-in log's "fix").</summary>
public static class BackendAdvice
{
    /// <summary>The fix for <paramref name="failure"/> on host <paramref name="hostName"/> at <paramref name="target"/>.</summary>
    public static string Fix(BackendFailure failure, string hostName, BackendTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return failure switch
        {
            BackendFailure.Logon => $"The host refused the account the gateway logs on with: re-enter that account's password (register the host again: 'gatehouse host delete {hostName}', then 'gatehouse host create' with the right password) and check it with 'gatehouse host test {hostName}'.",
            BackendFailure.NlaNotOffered => $"{hostName} does not speak NLA: register it with --backend-security tls ('gatehouse host delete {hostName}', then 'gatehouse host create … --backend-security tls'), or turn NLA on at the host.",
            BackendFailure.CredSsp => $"The NLA logon to {target.Host}:{target.Port} failed; 'gatehouse host test {hostName}' shows the step (a host that does not prove itself may sit behind a TLS interceptor).",
            _ => $"Check that {target.Host}:{target.Port} is up and reachable from the gateway ('gatehouse host test {hostName}').",
        };
    }
}
