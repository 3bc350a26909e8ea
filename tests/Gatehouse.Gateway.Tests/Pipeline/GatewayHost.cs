using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Admission;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
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
