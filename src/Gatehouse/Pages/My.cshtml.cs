using System.Text;
using Gatehouse.Admin.Operations;
using Gatehouse.Cli;
using Gatehouse.Gateway;
using Gatehouse.Portal;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Gatehouse.Pages;

/// <summary>
/// <c>/my</c>: the hosts the signed-in user may sign in to (role, account, the <c>xfreerdp3</c> command, the .rdp file,
/// what <c>diagnose</c> says when a policy would refuse now) and their own recent sign-ins. The command and the file
/// are those of <c>gatehouse connect-command</c> and <c>gatehouse rdp-file</c>.
/// </summary>
internal sealed class MyModel(IOptions<GatewayOptions> gateway) : PortalPageModel
{
    /// <summary>How many of the user's own sign-ins the page shows.</summary>
    public const int SignInRows = 20;

    public IReadOnlyList<MyHostView> Hosts { get; private set; } = [];

    public IReadOnlyList<SignInView> SignIns { get; private set; } = [];

    /// <summary>True when the gateway offers the QR sign-in (then the page offers its file and command too).</summary>
    public bool QrEnabled => gateway.Value.SignInMethods.HasFlag(SignInMethods.QrSignIn);

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Hosts = await Operations.ListMyHostsAsync(cancellationToken);
        SignIns = await Operations.ListMySignInsAsync(SignInRows, cancellationToken);
    }

    /// <summary>The .rdp file of one of the user's hosts (web account sign-in, or with <paramref name="qr"/> the QR sign-in).</summary>
    public async Task<IActionResult> OnGetRdpFileAsync(string? host, bool qr, CancellationToken cancellationToken)
    {
        var mine = (await Operations.ListMyHostsAsync(cancellationToken)).FirstOrDefault(h => string.Equals(h.Host, host?.Trim(), StringComparison.OrdinalIgnoreCase));
        if (mine is null)
        {
            return Problem(new PortalProblem(StatusCodes.Status404NotFound, "Not one of your hosts", $"No role assignment lets you sign in to '{host}'. My hosts lists the hosts you may use."));
        }

        if (qr && !QrEnabled)
        {
            return Problem(new PortalProblem(StatusCodes.Status404NotFound, "QR sign-in is off", "This gateway does not offer the QR sign-in; download the web account file instead."));
        }

        if (!ClientCommands.TryTarget(mine.Target, null, null, out var target, out var error))
        {
            return Problem(new PortalProblem(StatusCodes.Status409Conflict, "No address for clients", error));
        }

        var text = qr ? ClientCommands.QrRdpFile(target) : ClientCommands.RdpFile(target, Caller.Name);
        return File(new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text), "application/x-rdp", $"{mine.Host}{(qr ? "-qr" : string.Empty)}.rdp");
    }

    /// <summary>The <c>xfreerdp3</c> command of <c>gatehouse connect-command</c>, or why there is none.</summary>
    public static string Command(MyHostView host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return ClientCommands.TryTarget(host.Target, null, null, out var target, out var error) ? ClientCommands.ConnectCommandLine(target) : error;
    }

    /// <summary>The command of <c>gatehouse connect-command --qr-sign-in</c>, or why there is none.</summary>
    public static string QrCommand(MyHostView host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return ClientCommands.TryTarget(host.Target, null, null, out var target, out var error) ? ClientCommands.QrConnectCommandLine(target) : error;
    }
}
