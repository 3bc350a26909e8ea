using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Agents;

/// <summary>
/// The local account name for a user: stable (the recorded mapping wins), collision-safe, at most
/// <see cref="MaxLength"/> characters of <c>[a-z0-9-]</c>, starting with a letter (useradd's default NAME_REGEX), and
/// never an account the agent does not manage (an existing system or local account) nor a reserved name.
/// </summary>
public static class AgentNames
{
    /// <summary>Longest account name (useradd's limit is 32).</summary>
    public const int MaxLength = 32;

    /// <summary>Names never given to a user, whether or not they exist on this host.</summary>
    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.Ordinal)
    {
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
        "backup", "list", "irc", "gnats", "nobody", "systemd-network", "systemd-resolve", "messagebus", "sshd",
        "xrdp", "admin", "administrator", "guest", "sudo", "wheel", "adm", "staff", "users", "user", "operator",
        "defaultaccount", "wdagutilityaccount", "krbtgt", "gatehouse", "gatehouse-agent", "postgres", "polkitd",
    };

    /// <summary>The first name tried for <paramref name="userPrincipalName"/> (the UPN's local part, cleaned).</summary>
    public static string Candidate(string userPrincipalName)
    {
        ArgumentNullException.ThrowIfNull(userPrincipalName);
        var (local, _) = Split(userPrincipalName);
        return Fit(local, string.Empty);
    }

    /// <summary>
    /// The account for <paramref name="userPrincipalName"/>: the one recorded in <paramref name="mapping"/> (UPN →
    /// name), else the first free of <c>alice</c>, <c>alice-contoso</c>, <c>alice-contoso-1a2b</c>…, where free means
    /// not reserved, not mapped to another user and not an existing account (<paramref name="exists"/>).
    /// </summary>
    public static string Derive(string userPrincipalName, IReadOnlyDictionary<string, string> mapping, Func<string, bool> exists)
    {
        ArgumentNullException.ThrowIfNull(userPrincipalName);
        ArgumentNullException.ThrowIfNull(mapping);
        ArgumentNullException.ThrowIfNull(exists);
        var upn = userPrincipalName.Trim().ToLowerInvariant();
        if (mapping.TryGetValue(upn, out var recorded) && IsValid(recorded))
        {
            return recorded;
        }

        var taken = new HashSet<string>(mapping.Where(m => m.Key != upn).Select(m => m.Value), StringComparer.Ordinal);
        var (local, domain) = Split(upn);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(upn)));
        IEnumerable<string> Candidates()
        {
            yield return Fit(local, string.Empty);
            if (domain.Length > 0)
            {
                yield return Fit(local, "-" + domain);
            }

            for (var i = 0; i + 4 <= hash.Length; i += 4)
            {
                yield return Fit(local, string.Concat(domain.Length > 0 ? "-" + domain : string.Empty, "-", hash.AsSpan(i, 4)));
            }
        }

        foreach (var candidate in Candidates())
        {
            if (IsValid(candidate) && !Reserved.Contains(candidate) && !taken.Contains(candidate) && !exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"no free account name for {upn}");
    }

    /// <summary>True for a name of 1 to 32 characters of [a-z0-9-] starting with a letter.</summary>
    public static bool IsValid(string? name) =>
        name is { Length: >= 1 and <= MaxLength } && char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    /// <summary>The local part and the first label of the domain, each cleaned to [a-z0-9-].</summary>
    private static (string Local, string Domain) Split(string upn)
    {
        upn = upn.Trim().ToLowerInvariant();
        var at = upn.LastIndexOf('@');
        var local = Clean(at < 0 ? upn : upn[..at]);
        var domain = at < 0 ? string.Empty : Clean(upn[(at + 1)..].Split('.')[0]);
        return (local, domain);
    }

    /// <summary>Keeps [a-z0-9], turns every other run of characters into one '-', trims '-'; empty → "user".</summary>
    private static string Clean(string text)
    {
        var builder = new StringBuilder(Math.Min(text.Length, 128));
        foreach (var c in text.Take(128))
        {
            if (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c))
            {
                builder.Append(c);
            }
            else if (builder.Length > 0 && builder[^1] != '-')
            {
                builder.Append('-');
            }
        }

        return builder.ToString().Trim('-');
    }

    /// <summary>The base cut so that base + suffix fits <see cref="MaxLength"/>, starting with a letter.</summary>
    private static string Fit(string local, string suffix)
    {
        var name = local.Length == 0 ? "user" : char.IsAsciiLetterLower(local[0]) ? local : "u" + local;
        var room = MaxLength - suffix.Length;
        name = (name.Length > room ? name[..room] : name).TrimEnd('-') + suffix;
        return name.Length > MaxLength ? name[..MaxLength].TrimEnd('-') : name;
    }
}
