using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Sessions;
using Gatehouse.Gateway.SignIn;
using Gatehouse.Gateway.Transport;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Gateway.Tests.Pipeline;

/// <summary>
/// The connection handler on the gateway's own listener (<see cref="RdpSocketListener"/>), or on a Kestrel endpoint
/// when <see cref="OnKestrel"/>, on 127.0.0.1 with an OS-chosen port. The gateway's clock is a
/// <see cref="ManualTime"/> (unless a test registers another): no phase deadline fires because the machine is busy,
/// only when a test moves the clock.
/// </summary>
internal sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ClosedCounter _closed;
    private RdpSocketListener? _listener;

    private GatewayHost(WebApplication app, int port, X509Certificate2 certificate, ClosedCounter closed)
    {
        _app = app;
        Port = port;
        Certificate = certificate;
        _closed = closed;
    }

    public int Port { get; }

    public X509Certificate2 Certificate { get; }

    public PreauthAdmission Admission => _app.Services.GetRequiredService<PreauthAdmission>();

    public RecordingSignInLog SignInLog => _app.Services.GetRequiredService<RecordingSignInLog>();

    public RecordingJournal Journal => _app.Services.GetRequiredService<RecordingJournal>();

    /// <summary>The gateway's services.</summary>
    public IServiceProvider Services => _app.Services;

    public SessionRegistry Sessions => _app.Services.GetRequiredService<SessionRegistry>();

    /// <summary>The gateway's clock (the test moves it).</summary>
    public ManualTime Time => _app.Services.GetRequiredService<TimeProvider>() as ManualTime ?? throw new InvalidOperationException("this gateway runs on another clock");

    /// <summary>Connections whose closing Kestrel has signalled to the gateway (its ConnectionClosed token).</summary>
    public int ClosedConnections => _closed.Count;

    public static Task<GatewayHost> StartAsync(GatewayOptions options, params ISignInMethod[] authenticators) =>
        StartAsync(options, services =>
        {
            foreach (var authenticator in authenticators)
            {
                services.AddSingleton(authenticator);
            }
        });

    public static async Task<GatewayHost> StartAsync(GatewayOptions options, Action<IServiceCollection> configure)
    {
        var certificate = CreateCertificate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));
        builder.Services.AddSingleton(new PreauthAdmission(options.MaxPendingConnections, options.MaxPendingConnectionsPerAddress));
        builder.Services.AddSingleton(new GatewayCertificate(certificate));
        builder.Services.AddSingleton<TimeProvider>(new ManualTime());
        configure(builder.Services);
        builder.Services.TryAddSingleton<SessionRegistry>();
        builder.Services.TryAddSingleton<SessionOpener>();
        builder.Services.TryAddSingleton<ISignInAuthorizer>(new AllowEveryoneAuthorizer());
        builder.Services.TryAddSingleton<RecordingSignInLog>();
        builder.Services.TryAddSingleton<IGatewaySignInLog>(sp => sp.GetRequiredService<RecordingSignInLog>());
        builder.Services.TryAddSingleton<RecordingJournal>();
        builder.Services.TryAddSingleton<ISessionJournal>(sp => sp.GetRequiredService<RecordingJournal>());

        var closed = new ClosedCounter();
        if (OnKestrel)
        {
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Use(next => context =>
                {
                    context.ConnectionClosed.Register(closed.Increment);
                    return next(context);
                });
                l.UseConnectionHandler<RdpConnectionHandler>();
            }));
            var app = builder.Build();
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            return new GatewayHost(app, new Uri(address.Replace("[::]", "localhost", StringComparison.Ordinal)).Port, certificate, closed);
        }

        // The product's listener: the gateway's own accept loop (Kestrel serves nothing here but needs an address).
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var host = builder.Build();
        await host.StartAsync();
        var handler = ActivatorUtilities.GetServiceOrCreateInstance<RdpConnectionHandler>(host.Services);
        var listener = new RdpSocketListener(
            new IPEndPoint(IPAddress.Loopback, 0),
            connection =>
            {
                connection.ConnectionClosed.Register(closed.Increment);
                return handler.OnConnectedAsync(connection);
            },
            maxConnections: 10_000,
            host.Services.GetRequiredService<ILoggerFactory>().CreateLogger<RdpSocketListener>());
        listener.Start();
        return new GatewayHost(host, listener.EndPoint.Port, certificate, closed) { _listener = listener };
    }

    /// <summary>
    /// True when the tests run the driver on a Kestrel endpoint (<c>GATEHOUSE_TEST_RDP_LISTENER=kestrel</c>), as
    /// <c>Gatehouse:Gateway:Listener = Kestrel</c> does; otherwise on the gateway's own listener, the product's default.
    /// </summary>
    public static bool OnKestrel => string.Equals(Environment.GetEnvironmentVariable("GATEHOUSE_TEST_RDP_LISTENER"), "kestrel", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Waits (up to the backstop) until the gateway is done with every connection: none is before its sign-in's end,
    /// and no session is open (the clients have left).
    /// </summary>
    public Task WaitIdleAsync() => Until.TrueAsync(() => Admission.Pending == 0 && Sessions.Count == 0, "the gateway is done with its connections");

    /// <summary>Waits (up to 30 s) until <paramref name="count"/> connections have been closed on the gateway's side.</summary>
    public Task WaitClosedAsync(int count) => Until.TrueAsync(() => ClosedConnections >= count, $"{count} connection(s) closed at the gateway");

    public async ValueTask DisposeAsync()
    {
        if (_listener is not null)
        {
            // As the host's stop: the open connections are waited for (30 s, the host's default), then aborted.
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _listener.StopAsync(stop.Token);
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
        Certificate.Dispose();
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=vm1.gatehouse.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509Certificate2.CreateFromPem(cert.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}

/// <summary>Counts connections whose ConnectionClosed fired.</summary>
internal sealed class ClosedCounter
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Increment() => Interlocked.Increment(ref _count);
}

/// <summary>Records what reached the sign-in phase, proves a test user and answers with a marker line.</summary>
internal sealed class RecordingAuthenticator(SignInMethods method) : ISignInMethod
{
    private readonly TaskCompletionSource<GatewayConnection> _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SignInMethods Method { get; } = method;

    public string ProtocolName => "test";

    public bool QualifiesAccessRefusals => false;

    public HoldUses HoldUses => HoldUses.None;

    public Task<GatewayConnection> Reached => _reached.Task;

    public ISignInAttempt Begin(GatewayConnection connection, Stream client) => new Attempt(this, connection, client);

    private sealed class Attempt(RecordingAuthenticator method, GatewayConnection connection, Stream tls) : ISignInAttempt
    {
        public SignInSubject Subject { get; } = new() { TenantId = Guid.NewGuid(), UserId = Guid.NewGuid(), UserPrincipalName = "test@contoso.test", HostLabel = "vm1" };

        public Task<SignInProof> ProveAsync(CancellationToken clientClosed)
        {
            method._reached.TrySetResult(connection);
            return Task.FromResult(SignInProof.Of(Subject));
        }

        public SignInRefusal? PrepareAnswer(SessionGrant grant) => null;

        public string? AnswerCode(SignInOutcome outcome) => null;

        public async Task AnswerAsync(SignInOutcome outcome, CancellationToken clientClosed)
        {
            await tls.WriteAsync("signed-in\n"u8.ToArray(), clientClosed);
            await tls.FlushAsync(clientClosed);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Allows every proven subject, without a session (the pipeline tests stop at the answer).</summary>
internal sealed class AllowEveryoneAuthorizer : ISignInAuthorizer
{
    public Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken) =>
        Task.FromResult(AccessOutcome.Allow("allowed by test", null));
}

/// <summary>
/// Keeps every sign-in log entry in memory. Like the store, it honours the token it is given: an entry handed over with
/// a cancelled token is lost (and counted), so a caller that writes under the client's token is caught.
/// </summary>
internal sealed class RecordingSignInLog : IGatewaySignInLog
{
    private readonly ConcurrentQueue<GatewaySignInEvent> _entries = new();
    private int _lost;

    public IReadOnlyList<GatewaySignInEvent> Entries => [.. _entries];

    /// <summary>Entries that were handed over with a cancelled token and not written.</summary>
    public int Lost => Volatile.Read(ref _lost);

    /// <summary>Holds every write until opened (a slow store); the token is looked at once the write goes on.</summary>
    public Gate? Hold { get; set; }

    public async Task WriteAsync(GatewaySignInEvent signIn, CancellationToken cancellationToken)
    {
        if (Hold is { } hold)
        {
            await hold.PassAsync(CancellationToken.None);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            Interlocked.Increment(ref _lost);
            return;
        }

        _entries.Enqueue(signIn);
    }

    /// <summary>The entry written after those there now (null until it is).</summary>
    public Func<GatewaySignInEvent?> Next()
    {
        var index = _entries.Count;
        return () => _entries.Count > index ? Entries[index] : null;
    }

    /// <summary>
    /// Waits (up to 30 s) until <paramref name="count"/> entries are there, for a client that cannot see the answer (it
    /// left, or the gateway closed without one); an answered client finds its entry there already.
    /// </summary>
    public async Task<IReadOnlyList<GatewaySignInEvent>> WaitForAsync(int count)
    {
        await Until.TrueAsync(() => _entries.Count >= count, $"{count} sign-in log entries (there are {_entries.Count})");
        return Entries;
    }
}

/// <summary>Keeps session records in memory; can be told to fail the start record.</summary>
internal sealed class RecordingJournal : ISessionJournal
{
    private readonly ConcurrentQueue<string> _events = new();

    public bool FailStart { get; set; }

    /// <summary>The start record is cancelled while it is written (the decision's deadline passed).</summary>
    public bool CancelStart { get; set; }

    public IReadOnlyList<string> Events => [.. _events];

    public Task StartAsync(LiveSession session, CancellationToken cancellationToken)
    {
        if (FailStart)
        {
            throw new InvalidOperationException("the store is down");
        }

        if (CancelStart)
        {
            throw new OperationCanceledException("the client left");
        }

        _events.Enqueue($"start {session.Id} {session.Grant.UserPrincipalName} {session.Grant.HostName}");
        return Task.CompletedTask;
    }

    public Task EndAsync(LiveSession session, string reason, CancellationToken cancellationToken)
    {
        _events.Enqueue($"end {session.Id} {reason}");
        return Task.CompletedTask;
    }
}
