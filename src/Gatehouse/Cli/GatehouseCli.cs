using System.CommandLine;

namespace Gatehouse.Cli;

/// <summary>The <c>gatehouse</c> command tree (design/CLI.md).</summary>
internal static class GatehouseCli
{
    /// <summary>Builds the tree; <paramref name="environment"/> replaces standard input and the clock (tests).</summary>
    public static RootCommand Create(CliEnvironment? environment = null)
    {
        environment ??= new CliEnvironment();
        var root = new RootCommand("Gatehouse: Entra-style web-account sign-in, role-based access and an RDP gateway for any RDP host.")
        {
            ServeCommand.Create(),
            LoginCommands.CreateLogin(environment),
            LoginCommands.CreateLogout(environment),
            UserCommands.Create(environment),
            GroupCommands.CreateGroup(environment),
            HostCommands.Create(environment),
            GroupCommands.CreateHostGroup(environment),
            RoleCommands.Create(environment),
            PolicyCommands.Create(environment),
            LocationCommands.Create(environment),
            LogCommands.CreateSignIns(environment),
            LogCommands.CreateSessions(environment),
            DiagnoseCommand.Create(environment),
            ClientCommands.CreateRdpFileCommand(environment),
            ClientCommands.CreateConnectCommand(environment),
            KeyRingCommands.Create(environment),
            AgentCommands.Create(environment),
            AuditCommand.Create(environment),
        };
        return root;
    }
}
