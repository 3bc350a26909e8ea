using System.CommandLine;

namespace Gatehouse.Cli;

/// <summary>The <c>gatehouse</c> command tree (design/CLI.md).</summary>
internal static class GatehouseCli
{
    public static RootCommand Create()
    {
        var root = new RootCommand("Gatehouse: Entra-style web-account sign-in, role-based access and an RDP gateway for any RDP host.")
        {
            ServeCommand.Create(),
        };
        return root;
    }
}
