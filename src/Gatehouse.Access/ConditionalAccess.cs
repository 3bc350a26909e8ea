using System.Net;
using System.Text.Json.Serialization;

namespace Gatehouse.Access;

/// <summary>A policy's state, as in Entra.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PolicyState>))]
public enum PolicyState
{
    /// <summary>Evaluated and enforced.</summary>
    [JsonStringEnumMemberName("enabled")]
    Enabled,

    /// <summary>Not evaluated.</summary>
    [JsonStringEnumMemberName("disabled")]
    Disabled,

    /// <summary>Evaluated and logged, never enforced.</summary>
    [JsonStringEnumMemberName("enabledForReportingButNotEnforced")]
    ReportOnly,
}

/// <summary>
/// A Conditional Access policy in the shape of Entra's JSON (<c>displayName</c>, <c>state</c>, <c>conditions</c>,
/// <c>grantControls</c>, <c>sessionControls</c>), with Gatehouse's host conditions and maximum session duration.
/// </summary>
public sealed record ConditionalAccessPolicy
{
    /// <summary>Id.</summary>
    public Guid Id { get; init; } = Guid.NewGuid();

    /// <summary>Name, unique per tenant.</summary>
    public required string DisplayName { get; init; }

    /// <summary>State.</summary>
    public PolicyState State { get; init; } = PolicyState.Enabled;

    /// <summary>When the policy applies.</summary>
    public PolicyConditions Conditions { get; init; } = new();

    /// <summary>What a sign-in must satisfy; null means no grant requirement.</summary>
    public GrantControls? GrantControls { get; init; }

    /// <summary>Limits on the session.</summary>
    public SessionControls? SessionControls { get; init; }
}

/// <summary>The conditions; all present conditions must match for the policy to apply.</summary>
public sealed record PolicyConditions
{
    /// <summary>Users and groups (include and exclude; exclusion wins).</summary>
    public UserCondition Users { get; init; } = new();

    /// <summary>Applications (the RDP sign-in apps).</summary>
    public ApplicationCondition Applications { get; init; } = new();

    /// <summary>Hosts and host groups (Gatehouse's extension).</summary>
    public HostCondition? Hosts { get; init; }

    /// <summary>Named locations.</summary>
    public LocationCondition? Locations { get; init; }

    /// <summary>Sign-in risk levels the policy applies to (<c>low</c>, <c>medium</c>, <c>high</c>); empty means any.</summary>
    public IReadOnlyList<string> SignInRiskLevels { get; init; } = [];
}

/// <summary>Users: ids or UPNs, <c>All</c>; groups: ids or names.</summary>
public sealed record UserCondition
{
    /// <summary>Included users, or <c>All</c>.</summary>
    public IReadOnlyList<string> IncludeUsers { get; init; } = [];

    /// <summary>Excluded users (the break-glass account).</summary>
    public IReadOnlyList<string> ExcludeUsers { get; init; } = [];

    /// <summary>Included groups.</summary>
    public IReadOnlyList<string> IncludeGroups { get; init; } = [];

    /// <summary>Excluded groups.</summary>
    public IReadOnlyList<string> ExcludeGroups { get; init; } = [];
}

/// <summary>Application ids, or <c>All</c>.</summary>
public sealed record ApplicationCondition
{
    /// <summary>Included applications, or <c>All</c>.</summary>
    public IReadOnlyList<string> IncludeApplications { get; init; } = ["All"];

    /// <summary>Excluded applications.</summary>
    public IReadOnlyList<string> ExcludeApplications { get; init; } = [];
}

/// <summary>Hosts and host groups by name, or <c>All</c>.</summary>
public sealed record HostCondition
{
    /// <summary>Included hosts, or <c>All</c>.</summary>
    public IReadOnlyList<string> IncludeHosts { get; init; } = [];

    /// <summary>Excluded hosts.</summary>
    public IReadOnlyList<string> ExcludeHosts { get; init; } = [];

    /// <summary>Included host groups.</summary>
    public IReadOnlyList<string> IncludeHostGroups { get; init; } = [];

    /// <summary>Excluded host groups.</summary>
    public IReadOnlyList<string> ExcludeHostGroups { get; init; } = [];
}

/// <summary>Locations: named location ids or names, <c>All</c>, or <c>AllTrusted</c>.</summary>
public sealed record LocationCondition
{
    /// <summary>Included locations.</summary>
    public IReadOnlyList<string> IncludeLocations { get; init; } = ["All"];

    /// <summary>Excluded locations.</summary>
    public IReadOnlyList<string> ExcludeLocations { get; init; } = [];
}

/// <summary>
/// Grant controls combined with <c>AND</c> or <c>OR</c>: <c>block</c>, <c>mfa</c>, <c>phishingResistantMfa</c>, and an
/// <c>authenticationStrength</c> (which, as in Entra, cannot be combined with <c>mfa</c>).
/// </summary>
public sealed record GrantControls
{
    /// <summary><c>AND</c> or <c>OR</c>.</summary>
    public string Operator { get; init; } = "OR";

    /// <summary>The controls.</summary>
    public IReadOnlyList<string> BuiltInControls { get; init; } = [];

    /// <summary>The authentication strength required: in full, or a reference by <c>id</c> or <c>displayName</c>.</summary>
    public AuthenticationStrength? AuthenticationStrength { get; init; }
}

/// <summary>Session controls.</summary>
public sealed record SessionControls
{
    /// <summary>How long a sign-in counts before the user must sign in again.</summary>
    public SignInFrequency? SignInFrequency { get; init; }

    /// <summary>The longest a gateway session may last (Gatehouse's extension), in minutes.</summary>
    public int? MaxSessionMinutes { get; init; }
}

/// <summary>Entra's signInFrequency: a value in hours or days.</summary>
public sealed record SignInFrequency
{
    /// <summary>The number of <see cref="Type"/> units.</summary>
    public int Value { get; init; }

    /// <summary><c>hours</c> or <c>days</c>.</summary>
    public string Type { get; init; } = "hours";

    /// <summary>Whether the control is on.</summary>
    public bool IsEnabled { get; init; } = true;

    /// <summary>The span.</summary>
    public TimeSpan Span => string.Equals(Type, "days", StringComparison.OrdinalIgnoreCase) ? TimeSpan.FromDays(Value) : TimeSpan.FromHours(Value);
}

/// <summary>A named location: IP ranges in CIDR form, trusted or not.</summary>
public sealed record NamedLocation
{
    /// <summary>Id.</summary>
    public Guid Id { get; init; } = Guid.NewGuid();

    /// <summary>Name.</summary>
    public required string DisplayName { get; init; }

    /// <summary>CIDR ranges (IPv4 and IPv6).</summary>
    public IReadOnlyList<string> IpRanges { get; init; } = [];

    /// <summary>Trusted (counts for <c>AllTrusted</c>).</summary>
    public bool IsTrusted { get; init; }

    /// <summary>True when <paramref name="address"/> is inside one of the ranges; malformed ranges match nothing.</summary>
    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return IpRanges.Any(r => IPNetwork.TryParse(r, out var network) && network.Contains(address));
    }
}
