using System.Net;
using System.Net.Security;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.Tests.Pipeline;
using Gatehouse.Protocol.X224;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Gatehouse.Gateway.Tests.Sessions;

public sealed class SessionOpenerTests
{
    /// <summary>A start cancelled while its record is written (the decision's deadline) leaves nothing open: no registry entry, the host leg closed, an end record.</summary>
    [Fact]
    public async Task AttachAsync_CancelledWhileTheStartRecordIsWritten_ClosesEverything_AndRethrows()
    {
        var registry = new SessionRegistry();
        var journal = new RecordingJournal { CancelStart = true };
        var opener = new SessionOpener(registry, journal, Options.Create(new GatewayOptions()), TimeProvider.System, NullLogger<SessionOpener>.Instance);
        var hostSide = new TrackingStream();
        var backend = new BackendConnection(new SslStream(hostSide), SecurityProtocol.Ssl, "00");
        var grant = new SessionGrant
        {
            TenantId = Guid.NewGuid(),
            UserId = Guid.NewGuid(),
            UserPrincipalName = "alice@contoso.test",
            HostId = Guid.NewGuid(),
            HostName = "vm1",
            RoleName = "Virtual Machine User Login",
            Backend = new BackendTarget("127.0.0.1", 3389, SecurityProtocol.Ssl, "vmuser"),
            Credentials = new InjectedCredentials(string.Empty, "vmuser", "host-secret"),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => opener.AttachAsync(new GatewayConnection("c1", IPAddress.Loopback, DateTimeOffset.UtcNow), "tls", grant, backend, CancellationToken.None));

        Assert.Equal(0, registry.Count);
        Assert.True(hostSide.Disposed, "the host leg is closed");
        Assert.Contains(journal.Events, e => e.StartsWith("end ", StringComparison.Ordinal) && e.Contains("start_cancelled", StringComparison.Ordinal));
    }

    private sealed class TrackingStream : MemoryStream
    {
        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
