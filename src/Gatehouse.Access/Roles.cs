namespace Gatehouse.Access;

/// <summary>The actions Gatehouse checks. Management actions are <see cref="RoleDefinition.Actions"/>; signing in to a host is a data action, as in Azure.</summary>
public static class AccessActions
{
    /// <summary>Sign in to a host (data action; Azure's virtualMachines/login/action).</summary>
    public const string Login = "Gatehouse/hosts/login/action";

    /// <summary>Sign in to a host as an administrator (data action; Azure's virtualMachines/loginAsAdmin/action).</summary>
    public const string LoginAsAdmin = "Gatehouse/hosts/loginAsAdmin/action";

    /// <summary>Create or change role assignments.</summary>
    public const string RoleAssignmentsWrite = "Gatehouse/roleAssignments/write";

    /// <summary>Delete role assignments.</summary>
    public const string RoleAssignmentsDelete = "Gatehouse/roleAssignments/delete";

    /// <summary>Create or change role definitions.</summary>
    public const string RoleDefinitionsWrite = "Gatehouse/roleDefinitions/write";

    /// <summary>Delete role definitions.</summary>
    public const string RoleDefinitionsDelete = "Gatehouse/roleDefinitions/delete";

    /// <summary>Read hosts.</summary>
    public const string HostsRead = "Gatehouse/hosts/read";

    /// <summary>Create or change hosts.</summary>
    public const string HostsWrite = "Gatehouse/hosts/write";

    /// <summary>
    /// True when <paramref name="pattern"/> (an action with <c>*</c> wildcards, as in Azure role definitions) covers
    /// <paramref name="action"/>; case-insensitive.
    /// </summary>
    public static bool Matches(string pattern, string action)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(action);
        return Glob(pattern.AsSpan(), action.AsSpan());
    }

    private static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        while (!pattern.IsEmpty)
        {
            if (pattern[0] == '*')
            {
                var rest = pattern[1..];
                for (var i = 0; i <= text.Length; i++)
                {
                    if (Glob(rest, text[i..]))
                    {
                        return true;
                    }
                }

                return false;
            }

            if (text.IsEmpty || char.ToUpperInvariant(pattern[0]) != char.ToUpperInvariant(text[0]))
            {
                return false;
            }

            pattern = pattern[1..];
            text = text[1..];
        }

        return text.IsEmpty;
    }
}

/// <summary>
/// A role: what its assignees may do (actions), minus exclusions (not-actions), plus data actions (signing in). A
/// role may restrict which roles its assignees can assign to others (the Data Access Administrator's condition).
/// </summary>
public sealed record RoleDefinition
{
    /// <summary>Stable id (built-ins have fixed ids).</summary>
    public required Guid Id { get; init; }

    /// <summary>Display name, unique per tenant.</summary>
    public required string Name { get; init; }

    /// <summary>What the role is for.</summary>
    public string Description { get; init; } = string.Empty;

    /// <summary>Management actions (wildcards allowed).</summary>
    public IReadOnlyList<string> Actions { get; init; } = [];

    /// <summary>Management actions removed from <see cref="Actions"/>.</summary>
    public IReadOnlyList<string> NotActions { get; init; } = [];

    /// <summary>Data actions: signing in to hosts.</summary>
    public IReadOnlyList<string> DataActions { get; init; } = [];

    /// <summary>When set, role assignments written through this role may only assign these roles (by id).</summary>
    public IReadOnlyList<Guid>? AssignableRoleIds { get; init; }

    /// <summary>True for the six built-in roles.</summary>
    public bool IsBuiltIn { get; init; }

    /// <summary>True when the role grants <paramref name="action"/> as a management action.</summary>
    public bool AllowsAction(string action) =>
        Actions.Any(a => AccessActions.Matches(a, action)) && !NotActions.Any(a => AccessActions.Matches(a, action));

    /// <summary>True when the role grants <paramref name="dataAction"/>.</summary>
    public bool AllowsDataAction(string dataAction) => DataActions.Any(a => AccessActions.Matches(a, dataAction));
}

/// <summary>The built-in roles, with the exact names of design/CLI.md and Azure's semantics.</summary>
public static class BuiltInRoles
{
    /// <summary>Virtual Machine Administrator Login: sign in, as administrator.</summary>
    public static RoleDefinition VirtualMachineAdministratorLogin { get; } = new()
    {
        Id = Guid.Parse("1c0163c0-47e6-4577-8991-ea5c82e286e4"),
        Name = "Virtual Machine Administrator Login",
        Description = "Sign in to hosts as an administrator (the host's admin account).",
        Actions = [AccessActions.HostsRead, "Gatehouse/hostGroups/read"],
        DataActions = [AccessActions.Login, AccessActions.LoginAsAdmin],
        IsBuiltIn = true,
    };

    /// <summary>Virtual Machine User Login: sign in as a regular user.</summary>
    public static RoleDefinition VirtualMachineUserLogin { get; } = new()
    {
        Id = Guid.Parse("fb879df8-f326-4884-b1cf-06f3ad86be52"),
        Name = "Virtual Machine User Login",
        Description = "Sign in to hosts as a regular user (the host's user account).",
        Actions = [AccessActions.HostsRead, "Gatehouse/hostGroups/read"],
        DataActions = [AccessActions.Login],
        IsBuiltIn = true,
    };

    /// <summary>Virtual Machine Data Access Administrator: assign and remove the two login roles, nothing else.</summary>
    public static RoleDefinition VirtualMachineDataAccessAdministrator { get; } = new()
    {
        Id = Guid.Parse("66f75aeb-eabe-4b70-9f1e-c350c4c9ad04"),
        Name = "Virtual Machine Data Access Administrator",
        Description = "Add or remove assignments of the Virtual Machine Administrator Login and User Login roles.",
        Actions = ["*/read", AccessActions.RoleAssignmentsWrite, AccessActions.RoleAssignmentsDelete],
        AssignableRoleIds = [VirtualMachineAdministratorLogin.Id, VirtualMachineUserLogin.Id],
        IsBuiltIn = true,
    };

    /// <summary>Owner: manage everything, including access; grants no sign-in.</summary>
    public static RoleDefinition Owner { get; } = new()
    {
        Id = Guid.Parse("8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
        Name = "Owner",
        Description = "Manage everything, including who has access. Does not allow signing in to hosts.",
        Actions = ["*"],
        IsBuiltIn = true,
    };

    /// <summary>Contributor: manage everything except access; grants no sign-in.</summary>
    public static RoleDefinition Contributor { get; } = new()
    {
        Id = Guid.Parse("b24988ac-6180-42a0-ab88-20f7382dd24c"),
        Name = "Contributor",
        Description = "Manage everything except who has access. Does not allow signing in to hosts.",
        Actions = ["*"],
        NotActions = [AccessActions.RoleAssignmentsWrite, AccessActions.RoleAssignmentsDelete, AccessActions.RoleDefinitionsWrite, AccessActions.RoleDefinitionsDelete],
        IsBuiltIn = true,
    };

    /// <summary>Reader: view everything.</summary>
    public static RoleDefinition Reader { get; } = new()
    {
        Id = Guid.Parse("acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        Name = "Reader",
        Description = "View everything. Does not allow signing in to hosts.",
        Actions = ["*/read"],
        IsBuiltIn = true,
    };

    /// <summary>All six, in CLI.md's order.</summary>
    public static IReadOnlyList<RoleDefinition> All { get; } =
    [
        VirtualMachineAdministratorLogin, VirtualMachineUserLogin, VirtualMachineDataAccessAdministrator, Owner, Contributor, Reader,
    ];
}
