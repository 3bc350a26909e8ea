namespace Gatehouse.LoadGen.Gateway;

internal static class DesktopRun
{
    public static Task<DesktopResult> RunAsync(Microsoft.AspNetCore.Builder.WebApplication app, Minter minter, Arranged arranged, GatewaySettings settings, Action<string> progress, CancellationToken cancellationToken) =>
        Task.FromResult(new DesktopResult([], [], "not implemented yet"));
}
