using Gatehouse.Hosting;

namespace Gatehouse.Server.Tests.Support;

/// <summary>The sign-in browser for a <see cref="TestServer"/>.</summary>
internal sealed partial class SignInBrowser
{
    public SignInBrowser(TestServer server)
        : this(server.BaseAddress, server.App.Services.GetRequiredService<ServerCertificate>().Certificate.GetCertHashString())
    {
    }
}
