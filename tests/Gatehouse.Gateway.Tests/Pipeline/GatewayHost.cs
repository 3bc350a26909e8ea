using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Gatehouse.Gateway.Sessions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Gateway.Tests.Pipeline;

/// <summary>The connection handler on a real Kestrel listener on 127.0.0.1 with an OS-chosen port.</summary>
internal sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GatewayHost(WebApplication app, int port, X509Certificate2 certificate)
    {
        _app = app;
        Port = port;
        Certificate = certificate;
    }

    public int Port { get; }

    public X509Certificate2 Certificate { get; }

    public PreauthAdmission Admission => _app.Services.GetRequiredService<PreauthAdmission>();

    public RecordingSignInLog SignInLog => _app.Services.GetRequiredService<RecordingSignInLog>();

    public RecordingJournal Journal => _app.Services.GetRequiredService<RecordingJournal>();

    public SessionRegistry Sessions => _app.Services.GetRequiredService<SessionRegistry>();

    public static Task<GatewayHost> StartAsync(GatewayOptions options, params IClientAuthenticator[] authenticators) =>
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
        builder.Services.AddSingleton(TimeProvider.System);
        configure(builder.Services);
        builder.Services.TryAddSingleton<SessionRegistry>();
        builder.Services.TryAddSingleton<SessionOpener>();
        builder.Services.TryAddSingleton<RecordingSignInLog>();
        builder.Services.TryAddSingleton<IGatewaySignInLog>(sp => sp.GetRequiredService<RecordingSignInLog>());
        builder.Services.TryAddSingleton<RecordingJournal>();
        builder.Services.TryAddSingleton<ISessionJournal>(sp => sp.GetRequiredService<RecordingJournal>());

        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseConnectionHandler<RdpConnectionHandler>()));
        var app = builder.Build();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new GatewayHost(app, new Uri(address.Replace("[::]", "localhost", StringComparison.Ordinal)).Port, certificate);
    }

    public async ValueTask DisposeAsync()
    {
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

/// <summary>Records what reached the sign-in phase and answers with a marker line.</summary>
internal sealed class RecordingAuthenticator(SignInMethods method) : IClientAuthenticator
{
    private readonly TaskCompletionSource<GatewayConnection> _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SignInMethods Method { get; } = method;

    public Task<GatewayConnection> Reached => _reached.Task;

    public async Task<ClientAuthenticationResult> AuthenticateAsync(GatewayConnection connection, Stream tls, CancellationToken cancellationToken)
    {
        _reached.TrySetResult(connection);
        await tls.WriteAsync("signed-in\n"u8.ToArray(), cancellationToken);
        await tls.FlushAsync(cancellationToken);
        return ClientAuthenticationResult.Success;
    }
}

/// <summary>Keeps every sign-in log entry in memory.</summary>
internal sealed class RecordingSignInLog : IGatewaySignInLog
{
    private readonly ConcurrentQueue<GatewaySignInEvent> _entries = new();

    public IReadOnlyList<GatewaySignInEvent> Entries => [.. _entries];

    public Task WriteAsync(GatewaySignInEvent signIn, CancellationToken cancellationToken)
    {
        _entries.Enqueue(signIn);
        return Task.CompletedTask;
    }

    /// <summary>Waits until <paramref name="count"/> entries are there (log writes follow the answer to the client).</summary>
    public async Task<IReadOnlyList<GatewaySignInEvent>> WaitForAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (_entries.Count < count && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        return Entries;
    }
}

/// <summary>Keeps session records in memory; can be told to fail the start record.</summary>
internal sealed class RecordingJournal : ISessionJournal
{
    private readonly ConcurrentQueue<string> _events = new();

    public bool FailStart { get; set; }

    /// <summary>The start record is cancelled (the client left while it was written).</summary>
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
