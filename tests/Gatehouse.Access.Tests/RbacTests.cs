namespace Gatehouse.Access.Tests;

public sealed class RbacTests
{
    private static readonly Guid Alice = Guid.Parse("00000000-0000-0000-0000-00000000a11c");
    private static readonly Guid Ops = Guid.Parse("00000000-0000-0000-0000-0000000000a1");       // group
    private static readonly Guid Admins = Guid.Parse("00000000-0000-0000-0000-0000000000a2");    // group containing Ops
    private static readonly Guid Others = Guid.Parse("00000000-0000-0000-0000-0000000000a3");    // unrelated group
    private static readonly HostRef Vm1 = new("vm1", "prod");
    private static readonly HostRef Vm2 = new("vm2", null);

    private static Principal AliceInOps() => Principal.Expand(Alice, [Ops], g => g == Ops ? [Admins] : g == Admins ? [Ops] : []);

    private static RoleAssignment Assign(RoleDefinition role, Guid principal, PrincipalKind kind, string scope)
    {
        Assert.True(Scope.TryParse(scope, out var parsed, out var error), error);
        return new RoleAssignment(Guid.NewGuid(), principal, kind, role.Id, parsed);
    }

    public static TheoryData<string, string, PrincipalKind, string, LoginLevel> SignInCases() => new()
    {
        // role, principal (alice | ops | admins | others), kind, scope, expected level on vm1 (group prod)
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/hosts/vm1", LoginLevel.User },
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/hosts/VM1", LoginLevel.User },
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/hostGroups/prod", LoginLevel.User },
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/", LoginLevel.User },
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/hosts/vm2", LoginLevel.None },
        { "Virtual Machine User Login", "alice", PrincipalKind.User, "/hostGroups/test", LoginLevel.None },
        { "Virtual Machine Administrator Login", "alice", PrincipalKind.User, "/hosts/vm1", LoginLevel.Administrator },
        { "Virtual Machine Administrator Login", "alice", PrincipalKind.User, "/", LoginLevel.Administrator },
        { "Virtual Machine Administrator Login", "ops", PrincipalKind.Group, "/hostGroups/prod", LoginLevel.Administrator },
        { "Virtual Machine Administrator Login", "admins", PrincipalKind.Group, "/hosts/vm1", LoginLevel.Administrator },   // nested group
        { "Virtual Machine User Login", "others", PrincipalKind.Group, "/", LoginLevel.None },
        { "Virtual Machine User Login", "alice", PrincipalKind.Group, "/", LoginLevel.None },                          // kind matters
        { "Owner", "alice", PrincipalKind.User, "/", LoginLevel.None },
        { "Contributor", "alice", PrincipalKind.User, "/hosts/vm1", LoginLevel.None },
        { "Reader", "alice", PrincipalKind.User, "/", LoginLevel.None },
        { "Virtual Machine Data Access Administrator", "alice", PrincipalKind.User, "/", LoginLevel.None },
    };

    [Theory]
    [MemberData(nameof(SignInCases))]
    public void AuthorizeSignIn_Table(string roleName, string who, PrincipalKind kind, string scope, LoginLevel expected)
    {
        var role = BuiltInRoles.All.Single(r => r.Name == roleName);
        var id = who switch { "alice" => Alice, "ops" => Ops, "admins" => Admins, _ => Others };
        var rbac = new RbacEvaluator([], [Assign(role, id, kind, scope)]);
        var result = rbac.AuthorizeSignIn(AliceInOps(), Vm1);
        Assert.Equal(expected, result.Level);
        Assert.Equal(expected != LoginLevel.None, result.Allowed);
        if (result.Allowed)
        {
            Assert.Equal(role.Name, result.Role!.Name);
            Assert.Contains(result.GrantedBy!.Scope.ToString(), result.Explanation, StringComparison.Ordinal);
        }
        else
        {
            Assert.Null(result.GrantedBy);
            Assert.Contains("/hosts/vm1", result.Explanation, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AuthorizeSignIn_AdminAndUser_AdminWins()
    {
        var rbac = new RbacEvaluator([], [
            Assign(BuiltInRoles.VirtualMachineUserLogin, Alice, PrincipalKind.User, "/hosts/vm1"),
            Assign(BuiltInRoles.VirtualMachineAdministratorLogin, Ops, PrincipalKind.Group, "/"),
        ]);
        Assert.Equal(LoginLevel.Administrator, rbac.AuthorizeSignIn(AliceInOps(), Vm1).Level);
    }

    [Fact]
    public void AuthorizeSignIn_OwnerOnly_ExplainsThatOwnerGrantsNoSignIn()
    {
        var rbac = new RbacEvaluator([], [Assign(BuiltInRoles.Owner, Alice, PrincipalKind.User, "/")]);
        var result = rbac.AuthorizeSignIn(AliceInOps(), Vm2);
        Assert.False(result.Allowed);
        Assert.Contains("'Owner' at /", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("grant no sign-in", result.Explanation, StringComparison.Ordinal);
        Assert.Contains("Assign 'Virtual Machine User Login'", result.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void AuthorizeSignIn_HostWithoutGroup_GroupScopeDoesNotApply()
    {
        var rbac = new RbacEvaluator([], [Assign(BuiltInRoles.VirtualMachineUserLogin, Alice, PrincipalKind.User, "/hostGroups/prod")]);
        Assert.False(rbac.AuthorizeSignIn(AliceInOps(), Vm2).Allowed);
    }

    [Fact]
    public void AuthorizeSignIn_CustomRoleWithLoginDataAction_Counts()
    {
        var custom = new RoleDefinition { Id = Guid.NewGuid(), Name = "Kiosk Login", DataActions = ["Gatehouse/hosts/*/action"] };
        var rbac = new RbacEvaluator([custom], [new RoleAssignment(Guid.NewGuid(), Alice, PrincipalKind.User, custom.Id, Scope.Tenant)]);
        Assert.Equal(LoginLevel.Administrator, rbac.AuthorizeSignIn(AliceInOps(), Vm1).Level);
    }

    [Fact]
    public void AuthorizeSignIn_AssignmentOfDeletedRole_IsIgnored()
    {
        var rbac = new RbacEvaluator([], [new RoleAssignment(Guid.NewGuid(), Alice, PrincipalKind.User, Guid.NewGuid(), Scope.Tenant)]);
        Assert.False(rbac.AuthorizeSignIn(AliceInOps(), Vm1).Allowed);
    }

    public static TheoryData<string, string, string, bool> PermissionCases() => new()
    {
        // role at scope, action, target scope, allowed
        { "Owner@/", AccessActions.RoleAssignmentsWrite, "/hosts/vm1", true },
        { "Owner@/hostGroups/prod", AccessActions.HostsWrite, "/hosts/vm1", true },
        { "Owner@/hostGroups/prod", AccessActions.HostsWrite, "/hosts/vm2", false },
        { "Contributor@/", AccessActions.HostsWrite, "/hosts/vm1", true },
        { "Contributor@/", AccessActions.RoleAssignmentsWrite, "/", false },
        { "Contributor@/", AccessActions.RoleDefinitionsDelete, "/", false },
        { "Reader@/", AccessActions.HostsRead, "/hosts/vm2", true },
        { "Reader@/", AccessActions.HostsWrite, "/hosts/vm2", false },
        { "Virtual Machine User Login@/", AccessActions.HostsRead, "/hosts/vm1", true },
        { "Virtual Machine User Login@/", AccessActions.HostsWrite, "/hosts/vm1", false },
        { "Virtual Machine Data Access Administrator@/", AccessActions.RoleAssignmentsWrite, "/hosts/vm1", true },
        { "Virtual Machine Data Access Administrator@/", AccessActions.HostsWrite, "/hosts/vm1", false },
        { "Owner@/hosts/vm1", AccessActions.RoleAssignmentsWrite, "/", false },
    };

    [Theory]
    [MemberData(nameof(PermissionCases))]
    public void CheckPermission_Table(string assignment, string action, string target, bool allowed)
    {
        var (roleName, scope) = (assignment.Split('@')[0], assignment.Split('@')[1]);
        var rbac = new RbacEvaluator([], [Assign(BuiltInRoles.All.Single(r => r.Name == roleName), Alice, PrincipalKind.User, scope)]);
        Assert.True(Scope.TryParse(target, out var targetScope, out _));
        var result = rbac.CheckPermission(AliceInOps(), action, targetScope, targetScope.Name == "vm1" ? "prod" : null);
        Assert.Equal(allowed, result.Allowed);
        Assert.False(string.IsNullOrEmpty(result.Explanation));
    }

    public static TheoryData<string, string, bool> AssignCases() => new()
    {
        { "Virtual Machine Data Access Administrator", "Virtual Machine User Login", true },
        { "Virtual Machine Data Access Administrator", "Virtual Machine Administrator Login", true },
        { "Virtual Machine Data Access Administrator", "Owner", false },
        { "Virtual Machine Data Access Administrator", "Contributor", false },
        { "Virtual Machine Data Access Administrator", "Virtual Machine Data Access Administrator", false },
        { "Owner", "Owner", true },
        { "Owner", "Virtual Machine User Login", true },
        { "Contributor", "Virtual Machine User Login", false },
        { "Reader", "Reader", false },
    };

    [Theory]
    [MemberData(nameof(AssignCases))]
    public void CheckCanAssign_Table(string holder, string target, bool allowed)
    {
        var rbac = new RbacEvaluator([], [Assign(BuiltInRoles.All.Single(r => r.Name == holder), Alice, PrincipalKind.User, "/")]);
        var result = rbac.CheckCanAssign(AliceInOps(), BuiltInRoles.All.Single(r => r.Name == target), Scope.Host("vm1"));
        Assert.Equal(allowed, result.Allowed);
        if (!allowed && holder.StartsWith("Virtual Machine Data", StringComparison.Ordinal))
        {
            Assert.Contains("may only assign 'Virtual Machine Administrator Login' and 'Virtual Machine User Login'", result.Explanation, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CheckCanAssign_DataAccessAdminAndOwnerElsewhere_UsesTheUnrestrictedRoleWhereItApplies()
    {
        var rbac = new RbacEvaluator([], [
            Assign(BuiltInRoles.VirtualMachineDataAccessAdministrator, Alice, PrincipalKind.User, "/"),
            Assign(BuiltInRoles.Owner, Alice, PrincipalKind.User, "/hosts/vm2"),
        ]);
        Assert.True(rbac.CheckCanAssign(AliceInOps(), BuiltInRoles.Owner, Scope.Host("vm2")).Allowed);
        Assert.False(rbac.CheckCanAssign(AliceInOps(), BuiltInRoles.Owner, Scope.Host("vm1"), "prod").Allowed);
    }

    [Theory]
    [InlineData("/", "/")]
    [InlineData(" /hosts/VM1/ ", "/hosts/vm1")]
    [InlineData("/hostgroups/Prod", "/hostGroups/prod")]
    [InlineData("/HOSTS/vm-2.contoso_x", "/hosts/vm-2.contoso_x")]
    public void Scope_Parses(string text, string canonical)
    {
        Assert.True(Scope.TryParse(text, out var scope, out var error), error);
        Assert.Equal(canonical, scope.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("hosts/vm1")]
    [InlineData("/hosts")]
    [InlineData("/hosts/vm1/extra")]
    [InlineData("/vms/vm1")]
    [InlineData("/hosts/vm 1")]
    [InlineData("/hosts/vm1;drop")]
    public void Scope_Refuses(string text)
    {
        Assert.False(Scope.TryParse(text, out _, out var error));
        Assert.Contains("/hosts/NAME", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("*", "Gatehouse/hosts/write", true)]
    [InlineData("*/read", "Gatehouse/hosts/read", true)]
    [InlineData("*/read", "Gatehouse/hosts/write", false)]
    [InlineData("Gatehouse/hosts/*", "Gatehouse/hosts/login/action", true)]
    [InlineData("Gatehouse/hosts/*", "Gatehouse/hostGroups/read", false)]
    [InlineData("gatehouse/HOSTS/read", "Gatehouse/hosts/read", true)]
    [InlineData("Gatehouse/hosts/read", "Gatehouse/hosts/readx", false)]
    public void Actions_Match(string pattern, string action, bool matches) =>
        Assert.Equal(matches, AccessActions.Matches(pattern, action));

    [Fact]
    public void Principal_Expand_FollowsNestingAndStopsAtCycles()
    {
        var principal = AliceInOps();
        Assert.Equal(new HashSet<Guid> { Ops, Admins }, principal.GroupIds);
        Assert.True(principal.IsCoveredBy(Alice, PrincipalKind.User));
        Assert.False(principal.IsCoveredBy(Others, PrincipalKind.Group));
    }
}
