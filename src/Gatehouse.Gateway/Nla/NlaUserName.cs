namespace Gatehouse.Gateway.Nla;

/// <summary>
/// The user-name forms a client may type for a Microsoft Entra joined computer: <c>user@domain</c>,
/// <c>AzureAD\user@domain</c>, <c>.\AzureAD\user@domain</c>, <c>EntraID\user@domain</c> and
/// <c>.\EntraID\user@domain</c> all mean that UPN; anything else (<c>DOMAIN\user</c>, a bare name) is refused with
/// the sentence Windows shows.
/// </summary>
public static class NlaUserName
{
    /// <summary>What the user is told when the name is not a work account.</summary>
    public const string EntraJoinedMessage = SignInMessages.NotAWorkAccount;

    /// <summary>Longest name accepted (a UPN is at most 113 characters in Entra ID; leave room for the prefixes).</summary>
    public const int MaxLength = 256;

    /// <summary>
    /// Maps the NTLM (or TSPasswordCreds) domain and user fields to a UPN; false when the name is not one of the
    /// accepted forms.
    /// </summary>
    public static bool TryResolve(string domain, string user, out string upn)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(user);
        upn = string.Empty;
        var name = domain.Length == 0 ? user : domain + "\\" + user;
        if (name.Length > MaxLength)
        {
            return false;
        }

        if (name.StartsWith(".\\", StringComparison.Ordinal))
        {
            name = name[2..];
        }

        foreach (var prefix in (ReadOnlySpan<string>)["AzureAD\\", "EntraID\\"])
        {
            if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                name = name[prefix.Length..];
                break;
            }
        }

        var at = name.IndexOf('@', StringComparison.Ordinal);
        if (name.Contains('\\', StringComparison.Ordinal) || at <= 0 || at != name.LastIndexOf('@') || at == name.Length - 1 || name.Any(char.IsWhiteSpace))
        {
            return false;
        }

        upn = name;
        return true;
    }
}
