using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Gatehouse.Hosting;

/// <summary>Where the HTTPS certificate came from, for the startup message.</summary>
internal enum CertificateSource
{
    ConfiguredPem,
    Generated,
    Reused,
}

/// <summary>
/// The identity provider's HTTPS certificate: configured PEM files, or a self-signed RSA 2048 / SHA-256 certificate
/// generated into <c>&lt;data&gt;/tls</c> on first run and reused afterwards (Debian's OpenSSL policy, SECLEVEL 2,
/// refuses weaker keys). A generated certificate is renewed when it is about to expire or no longer names the
/// public host.
/// </summary>
internal static class TlsCertificates
{
    public const string FolderName = "tls";
    public const string CertificateFileName = "gatehouse.crt";
    public const string KeyFileName = "gatehouse.key";

    private static readonly TimeSpan Validity = TimeSpan.FromDays(825);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    public static (X509Certificate2 Certificate, CertificateSource Source, string Path) Load(
        TlsOptions options, string dataDirectory, string publicHost, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!string.IsNullOrEmpty(options.CertificatePath) || !string.IsNullOrEmpty(options.KeyPath))
        {
            if (string.IsNullOrEmpty(options.CertificatePath) || string.IsNullOrEmpty(options.KeyPath))
            {
                throw new StartupException(
                    "Both Gatehouse:Tls:CertificatePath and Gatehouse:Tls:KeyPath must be set (PEM files), or neither to use a generated certificate.");
            }

            return (LoadPem(options.CertificatePath, options.KeyPath), CertificateSource.ConfiguredPem, options.CertificatePath);
        }

        var directory = System.IO.Path.Combine(dataDirectory, FolderName);
        var certPath = System.IO.Path.Combine(directory, CertificateFileName);
        var keyPath = System.IO.Path.Combine(directory, KeyFileName);
        var now = time.GetUtcNow();
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            var existing = LoadPem(certPath, keyPath);
            if (existing.NotAfter.ToUniversalTime() - RenewBefore > now.UtcDateTime && existing.MatchesHostname(publicHost))
            {
                return (existing, CertificateSource.Reused, certPath);
            }

            existing.Dispose();
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var generated = Generate(publicHost, now);
        WritePrivate(keyPath, generated.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());
        WritePrivate(certPath, generated.ExportCertificatePem());
        return (generated, CertificateSource.Generated, certPath);
    }

    /// <summary>A self-signed server certificate naming the public host, localhost and the loopback addresses.</summary>
    public static X509Certificate2 Generate(string publicHost, DateTimeOffset now)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={SanitizeCommonName(publicHost)}, O=Gatehouse", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        if (IPAddress.TryParse(publicHost, out var ip))
        {
            san.AddIpAddress(ip);
        }
        else
        {
            san.AddDnsName(publicHost);
        }

        if (!string.Equals(publicHost, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            san.AddDnsName("localhost");
        }

        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(Validity));

        // Round-trip through PEM so the key is usable by SslStream on every platform.
        return X509Certificate2.CreateFromPem(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    private static X509Certificate2 LoadPem(string certPath, string keyPath)
    {
        try
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"Cannot load the HTTPS certificate from {certPath} and {keyPath}: {e.Message}. Check the files are PEM (certificate and PKCS#8 or RSA private key) and readable.");
        }
    }

    private static void WritePrivate(string path, string contents)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(contents);
    }

    private static string SanitizeCommonName(string host) =>
        new(host.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':').Take(64).ToArray());
}
