using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Gatehouse.Hosting;

namespace Gatehouse.EndToEnd.Tests.Support;

/// <summary>
/// What every node of a test cluster shares (docs/multi-node.md, "What every node must share"): the key-encryption key
/// and one TLS certificate and key as PEM files, plus the public name. Disposing deletes the files.
/// </summary>
internal sealed class ClusterSecrets : IDisposable
{
    /// <summary>The public name every node issues tokens for.</summary>
    public const string PublicName = "login.gatehouse.test";

    private ClusterSecrets(string directory, string key, string certificatePath, string keyPath, string thumbprint)
    {
        Directory = directory;
        KeyEncryptionKey = key;
        CertificatePath = certificatePath;
        KeyPath = keyPath;
        Thumbprint = thumbprint;
    }

    public string Directory { get; }

    /// <summary>Base64 of 32 bytes, given to every node as <c>Gatehouse__KeyRing__Key</c>.</summary>
    public string KeyEncryptionKey { get; }

    public string CertificatePath { get; }

    public string KeyPath { get; }

    /// <summary>The SHA-1 thumbprint of the shared certificate, which the test's HTTP clients pin.</summary>
    public string Thumbprint { get; }

    public static ClusterSecrets Create()
    {
        var directory = System.IO.Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gatehouse-cluster", Guid.NewGuid().ToString("N"))).FullName;
        using var certificate = TlsCertificates.Generate(PublicName, DateTimeOffset.UtcNow);
        var certificatePath = Path.Combine(directory, "tls.crt");
        var keyPath = Path.Combine(directory, "tls.key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        using var rsa = System.Security.Cryptography.X509Certificates.RSACertificateExtensions.GetRSAPrivateKey(certificate)!;
        File.WriteAllText(keyPath, rsa.ExportPkcs8PrivateKeyPem());
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        return new ClusterSecrets(directory, key, certificatePath, keyPath, certificate.GetCertHashString());
    }

    /// <summary>An HTTP client that trusts exactly the shared certificate (no redirects, no cookies).</summary>
    public HttpClient Client(Uri baseAddress)
    {
        var pinned = Thumbprint;
        return new HttpClient(new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == pinned },
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromSeconds(30),
        };
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// One real <c>gatehouse serve</c> process (the built <c>src/Gatehouse</c> output, run with the SDK's <c>dotnet</c>): its
/// own data directory and configuration file, HTTPS and RDP on free loopback ports, the cluster's shared secrets, its
/// standard output and error captured line by line. Stopped with SIGTERM (<see cref="Terminate"/>) or SIGKILL
/// (<see cref="KillHard"/>); disposing kills it if it still runs and deletes its data directory.
/// </summary>
internal sealed class GatehouseProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly ConcurrentQueue<string> lines = new();
    private readonly ConcurrentQueue<(TimeSpan At, string Line)> timed = new();
    private readonly Stopwatch clock = new();
    private readonly string directory;
    private readonly HttpClient client;

    private GatehouseProcess(string name, Process process, string directory, int httpsPort, int rdpPort, HttpClient client, string store, string thumbprint)
    {
        Name = name;
        Store = store;
        Thumbprint = thumbprint;
        this.process = process;
        this.directory = directory;
        HttpsPort = httpsPort;
        RdpPort = rdpPort;
        this.client = client;
    }

    /// <summary>The test's name for the node (A, B…).</summary>
    public string Name { get; }

    public int HttpsPort { get; }

    /// <summary>The node's store (its <c>Gatehouse:Store</c> connection string).</summary>
    public string Store { get; }

    /// <summary>The SHA-1 thumbprint of the certificate the node serves (the cluster's shared one).</summary>
    public string Thumbprint { get; }

    public int RdpPort { get; }

    public int Pid => process.Id;

    /// <summary>The node's name in session records and heartbeats: this machine's host name and the RDP port.</summary>
    public string NodeName => $"{Dns.GetHostName()}:{RdpPort}";

    /// <summary>An HTTP client for this node's HTTPS port, pinned to the shared certificate.</summary>
    public HttpClient Http => client;

    public bool HasExited => process.HasExited;

    /// <summary>Everything the process wrote so far, one line per entry (standard error lines prefixed).</summary>
    public IReadOnlyList<string> Lines => [.. lines];

    /// <summary>When <see cref="WaitReadyAsync"/> saw <c>/healthz/ready</c> answer 200, measured from the process's start.</summary>
    public TimeSpan? ReadyAfter { get; private set; }

    /// <summary>
    /// Where the node's start-up time went: when its first line, the key ring line (after the migrations), the
    /// first-run banner (one node), "Application started" and readiness came, in seconds from the process's start.
    /// </summary>
    public string StartupTimeline()
    {
        static string At(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) : "-";
        var firstLine = timed.TryPeek(out var first) ? first.At : (TimeSpan?)null;
        return $"{Name}: first line {At(firstLine)}, migrated (key ring) {At(TimeOf("Data Protection key ring:"))}, first-run {At(TimeOf("Gatehouse first run"))}, " +
            $"started {At(TimeOf("Application started"))}, ready {At(ReadyAfter)}";
    }

    /// <summary>When the first line containing <paramref name="text"/> arrived, measured from the process's start; null if none did.</summary>
    public TimeSpan? TimeOf(string text) => timed.FirstOrDefault(t => t.Line.Contains(text, StringComparison.Ordinal)) is { Line: not null } hit ? hit.At : null;

    public string Output => $"--- node {Name} (pid {process.Id}, https {HttpsPort}, rdp {RdpPort}) ---{Environment.NewLine}{string.Join(Environment.NewLine, lines)}";

    /// <summary>
    /// Starts a node on <paramref name="store"/> with the shared <paramref name="secrets"/>; <paramref name="settings"/>
    /// (keys such as <c>Gatehouse:Cluster:HeartbeatInterval</c>) go into its configuration file.
    /// </summary>
    public static GatehouseProcess Start(string name, string store, ClusterSecrets secrets, IReadOnlyDictionary<string, string>? settings = null)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        var directory = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gatehouse-cluster", Guid.NewGuid().ToString("N"))).FullName;
        var httpsPort = LoopbackPorts.Next();
        var rdpPort = LoopbackPorts.Next();
        var configuration = new Dictionary<string, string>
        {
            ["Gatehouse:DataDirectory"] = Path.Combine(directory, "data"),
            ["Gatehouse:Urls"] = $"https://127.0.0.1:{httpsPort}",
            ["Gatehouse:RdpPort"] = rdpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gatehouse:PublicName"] = ClusterSecrets.PublicName,
            ["Gatehouse:Store"] = store,
            ["Gatehouse:Tls:CertificatePath"] = secrets.CertificatePath,
            ["Gatehouse:Tls:KeyPath"] = secrets.KeyPath,

            // Every request of the tests comes from 127.0.0.1.
            ["Gatehouse:Limits:RequestsPerAddressPerMinute"] = "100000",
            ["Logging:LogLevel:Default"] = "Information",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            configuration[key] = value;
        }

        var configFile = Path.Combine(directory, "gatehouse.json");
        File.WriteAllText(configFile, Nest(configuration).ToJsonString());

        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(GatehouseDll());
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(configFile);

        // The key-encryption key from the environment, as docs/multi-node.md shows it.
        start.Environment["Gatehouse__KeyRing__Key"] = secrets.KeyEncryptionKey;
        AddFastStartEnvironment(start);
        var process = new Process { StartInfo = start };
        var node = new GatehouseProcess(name, process, directory, httpsPort, rdpPort, secrets.Client(new Uri($"https://127.0.0.1:{httpsPort}/")), store, secrets.Thumbprint);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                node.Receive(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                node.Receive("stderr: " + e.Data);
            }
        };
        node.clock.Start();
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Polls <c>/healthz/ready</c> every 100 ms until it answers 200; fails at once when the process exits meanwhile.</summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                // Its last lines (why it exited) may still be on their way to the output handlers: read them to the end first.
                using (var drained = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
                {
                    try
                    {
                        await process.WaitForExitAsync(drained.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        // What was read so far is what the message shows.
                    }
                }

                throw new InvalidOperationException($"Node {Name} exited with code {process.ExitCode} before it was ready.{Environment.NewLine}{Output}");
            }

            if (await StatusAsync(Readiness.ReadyPath) == HttpStatusCode.OK)
            {
                ReadyAfter = this.clock.Elapsed;
                return;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Node {Name} was not ready after {timeout.TotalSeconds:0} s.{Environment.NewLine}{Output}");
            }

            // The poll interval only bounds how late readiness is noticed (a refused connection costs next to nothing).
            await Task.Delay(100);
        }
    }

    /// <summary>The status of GET <paramref name="path"/>, or null when the node does not answer.</summary>
    public async Task<HttpStatusCode?> StatusAsync(string path)
    {
        try
        {
            using var response = await client.GetAsync(new Uri(path, UriKind.Relative));
            return response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Sends SIGTERM (what a service manager sends to stop the node).</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>Sends SIGKILL (<c>kill -9</c>): the node dies without a word.</summary>
    public void KillHard() => Signal("KILL");

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Node {Name} did not exit within {timeout.TotalSeconds:0} s.{Environment.NewLine}{Output}");
        }

        return process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            KillHard();
            try
            {
                await WaitForExitAsync(Wait.Generous);
            }
            catch (TimeoutException)
            {
            }
        }

        client.Dispose();
        process.Dispose();
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The built <c>gatehouse.dll</c>: <c>src/Gatehouse/bin/CONFIGURATION/TFM</c> of the tests' own configuration.</summary>
    public static string GatehouseDll()
    {
        // The test's folder is tests/Gatehouse.EndToEnd.Tests/bin/CONFIGURATION/TFM/.
        var testFolder = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = testFolder.Name;
        var configuration = testFolder.Parent!.Name;
        for (var folder = testFolder; folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Gatehouse.slnx")))
            {
                var dll = Path.Combine(folder.FullName, "src", "Gatehouse", "bin", configuration, framework, "gatehouse.dll");
                return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build src/Gatehouse ({configuration}) first.");
            }
        }

        throw new InvalidOperationException("Gatehouse.slnx was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The <c>dotnet</c> host that runs the tests (the SDK's), else <c>dotnet</c> on the path.</summary>
    public static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>
    /// Runtime settings for the test's child processes (nodes and CLI runs), in their environment: no tier-up of
    /// jitted code (<c>DOTNET_TC_CallCounting=0</c>, and so no PGO instrumentation). A node lives for seconds to a minute
    /// here, and most of its start-up CPU went to counting calls and re-jitting hot methods at tier 1 on a background
    /// thread; without it three nodes on an empty database used about a third less CPU until ready (measured by
    /// hand on 2 shared cores; the numbers are in docs/multi-node.md). The framework's own code is precompiled
    /// (ReadyToRun) and stays so; what the tests check (correctness, and timings of seconds) does not depend on tier 1.
    /// </summary>
    public static void AddFastStartEnvironment(ProcessStartInfo start)
    {
        ArgumentNullException.ThrowIfNull(start);
        start.Environment["DOTNET_TC_CallCounting"] = "0";
        start.Environment["DOTNET_TieredPGO"] = "0";
    }

    private static JsonObject Nest(Dictionary<string, string> flat)
    {
        var root = new JsonObject();
        foreach (var (key, value) in flat)
        {
            var parts = key.Split(':');
            var node = root;
            foreach (var part in parts[..^1])
            {
                if (node[part] is not JsonObject child)
                {
                    child = [];
                    node[part] = child;
                }

                node = child;
            }

            node[parts[^1]] = value;
        }

        return root;
    }

    private void Receive(string line)
    {
        lines.Enqueue(line);
        timed.Enqueue((clock.Elapsed, line));
    }

    /// <summary>Sends <paramref name="signal"/> with <c>kill</c>, as an operator would.</summary>
    private void Signal(string signal)
    {
        if (process.HasExited)
        {
            return;
        }

        var start = new ProcessStartInfo("kill") { UseShellExecute = false, RedirectStandardError = true };
        start.ArgumentList.Add("-s");
        start.ArgumentList.Add(signal);
        start.ArgumentList.Add(process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var kill = Process.Start(start)!;
        var error = kill.StandardError.ReadToEnd();
        kill.WaitForExit();
        if (kill.ExitCode != 0 && !process.HasExited)
        {
            throw new InvalidOperationException($"kill -s {signal} {process.Id} failed: {error}");
        }
    }
}
