using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Access;

/// <summary>The level a scope names.</summary>
public enum ScopeKind
{
    /// <summary><c>/</c>: the whole tenant.</summary>
    Tenant,

    /// <summary><c>/hostGroups/{name}</c>.</summary>
    HostGroup,

    /// <summary><c>/hosts/{name}</c>.</summary>
    Host,
}

/// <summary>
/// Where a role assignment applies, as in Azure RBAC: <c>/</c>, <c>/hostGroups/{name}</c> or <c>/hosts/{name}</c>. An
/// assignment applies to its scope and everything below it (a host group contains its hosts). Names compare
/// case-insensitively and are kept lower-case.
/// </summary>
public sealed record Scope
{
    private Scope(ScopeKind kind, string? name)
    {
        Kind = kind;
        Name = name;
    }

    /// <summary>The tenant scope <c>/</c>.</summary>
    public static Scope Tenant { get; } = new(ScopeKind.Tenant, null);

    /// <summary>The level.</summary>
    public ScopeKind Kind { get; }

    /// <summary>The host or host group name; null for the tenant.</summary>
    public string? Name { get; }

    /// <summary>The scope of a host group.</summary>
    public static Scope HostGroup(string name) => new(ScopeKind.HostGroup, Normalize(name));

    /// <summary>The scope of a host.</summary>
    public static Scope Host(string name) => new(ScopeKind.Host, Normalize(name));

    /// <summary>Parses <c>/</c>, <c>/hostGroups/{name}</c> or <c>/hosts/{name}</c> (segment names case-insensitive, a trailing slash allowed).</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out Scope? scope, [NotNullWhen(false)] out string? error)
    {
        scope = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "A scope is required: /, /hostGroups/NAME or /hosts/NAME.";
            return false;
        }

        var trimmed = text.Trim();
        if (trimmed == "/")
        {
            scope = Tenant;
            error = null;
            return true;
        }

        var parts = trimmed.Trim('/').Split('/');
        if (parts.Length == 2 && IsValidName(parts[1]))
        {
            if (string.Equals(parts[0], "hostGroups", StringComparison.OrdinalIgnoreCase))
            {
                scope = HostGroup(parts[1]);
            }
            else if (string.Equals(parts[0], "hosts", StringComparison.OrdinalIgnoreCase))
            {
                scope = Host(parts[1]);
            }
        }

        if (scope is null || !trimmed.StartsWith('/'))
        {
            scope = null;
            error = $"'{text}' is not a scope; use /, /hostGroups/NAME or /hosts/NAME.";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>True when this scope is <paramref name="target"/> or above it (given the host's group).</summary>
    public bool Contains(Scope target, string? targetHostGroup = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        return Kind switch
        {
            ScopeKind.Tenant => true,
            ScopeKind.HostGroup => (target.Kind == ScopeKind.HostGroup && target.Name == Name)
                || (target.Kind == ScopeKind.Host && targetHostGroup is not null && Normalize(targetHostGroup) == Name),
            _ => target.Kind == ScopeKind.Host && target.Name == Name,
        };
    }

    /// <summary>The canonical text form.</summary>
    public override string ToString() => Kind switch
    {
        ScopeKind.Tenant => "/",
        ScopeKind.HostGroup => $"/hostGroups/{Name}",
        _ => $"/hosts/{Name}",
    };

    private static bool IsValidName(string name) =>
        name.Length is > 0 and <= 128 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static string Normalize(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return name.Trim().ToLowerInvariant();
    }
}
