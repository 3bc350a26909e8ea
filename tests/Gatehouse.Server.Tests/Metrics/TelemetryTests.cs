using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Gatehouse.Gateway.Tests;
using Gatehouse.Gateway.Tests.Nla;
using Gatehouse.Gateway.Tests.WebAccount;
using Gatehouse.Hosting;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Server.Tests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Gatehouse.Server.Tests.Metrics;

/// <summary>
/// Issue 20 item 1: the spans and metrics of real sign-ins through <c>gatehouse serve</c>, received in process by
/// OpenTelemetry's in-memory exporters from the same providers that export over OTLP: their names and attributes, and
/// no secret of the sign-in (password, code, tokens) in any attribute of any span, event, link or metric point.
/// </summary>
public sealed class TelemetryTests
{
    private const string Broker = "ms-appx-web%3a%2f%2fMicrosoft.AAD.BrokerPlugin%2fa85cf173-4192-42f8-81fa-777a763e6e2c";

    /// <summary>The phases before the token is known (children of the connection's span), and after (children of the sign-in span).</summary>
    private static readonly string[] PhasesBeforeToken = ["gatehouse.rdp.negotiation", "gatehouse.rdp.tls", "gatehouse.rdp.proof"];

    private static readonly string[] PhasesAfterToken = ["gatehouse.rdp.authorization", "gatehouse.rdp.answer"];

    [Fact]
    public async Task WebAccountSignIn_IdpPagesTokenEndpointAndRdpConnection_AreTracedAndCounted_WithoutSecrets()
    {
        // Arrange: a server whose providers also export to memory.
        var telemetry = new Capture();
        await using var s = await IdpScenario.StartAsync(Overrides, telemetry.Configure);

        // Act: the browser signs in with the password, the client redeems the code (PoP-bound) and signs in over RDP.
        using var browser = new SignInBrowser(s.Server);
        await IdpScenario.SignInAsync(browser);
        await browser.SubmitAsync(("consent", "allow"));
        var code = IdpScenario.CodeFromCopyPage(browser.Html);
        Assert.True(code is not null, browser.Error ?? browser.Html);
        using var key = RSA.Create(2048);
        var (accessToken, refreshToken) = await RedeemAsync(s.Server, code, key);
        var aadNonce = await ServerNonceAsync(s.Server);
        int result;
        await using (var client = await AadTestClient.ConnectAsync(GatehouseHost.RdpEndPoint(s.Server.App).Port))
        {
            await client.SendAsync(Assertion(key, accessToken, await client.ReadNonceAsync(), aadNonce));
            result = await client.ReadResultAsync();
        }

        var log = await s.SignInsAsync();
        Assert.True(result == RdsAadAuthResult.AccessDenied, string.Join("\n", log.Select(e => $"{e.Protocol} {e.Result} {e.Reason}")));
        var rdp = Assert.Single(log, e => e.Protocol == "web_account");
        var idp = Assert.Single(log, e => e.Protocol == "browser" && e.Result == "success");
        var connection = await telemetry.WaitForSpanAsync(a => a.OperationName == "gatehouse.rdp.connection" && Tag(a, "gatehouse.correlation_id") == rdp.CorrelationId);

        // Assert: the RDP connection's span and its phases, with the sign-in log's correlation id and result.
        Assert.Equal(ActivityKind.Server, connection.Kind);
        Assert.Equal("web_account", Tag(connection, "gatehouse.protocol"));
        Assert.Equal("failure", Tag(connection, "gatehouse.result"));
        Assert.Equal("no_role_assignment", Tag(connection, "gatehouse.reason"));
        Assert.Equal(rdp.UserId?.ToString(), Tag(connection, "enduser.id"));
        Assert.Equal("WebAccount", Tag(connection, "gatehouse.rdp.method"));
        Assert.Contains(connection.Events, e => e.Name == "gatehouse.sign_in_log");
        var phases = telemetry.Spans.Where(a => a.ParentSpanId == connection.SpanId && a.TraceId == connection.TraceId).Select(a => a.OperationName).ToList();
        Assert.Equal(PhasesBeforeToken, phases);

        // The IdP: the page that wrote the sign-in's log entry carries its correlation id, result and user.
        var logged = Assert.Single(telemetry.Spans, a => a.OperationName == "gatehouse.idp.authorize" && Tag(a, "gatehouse.correlation_id") == idp.CorrelationId);
        Assert.Equal(("success", idp.UserId?.ToString()), (Tag(logged, "gatehouse.result"), Tag(logged, "enduser.id")));
        var pages = telemetry.Spans.Where(a => a.OperationName == "gatehouse.idp.authorize" && a.TraceId == logged.TraceId).ToList();
        Assert.True(pages.Count >= 4, $"{pages.Count} pages in the sign-in's trace: the first, the user name, the password and the consent");
        var port = s.Server.BaseAddress.Port;
        var token = Assert.Single(telemetry.Spans, a => a.OperationName == "gatehouse.idp.token" && Tag(a, "gatehouse.grant_type") == "authorization_code" && OnPort(telemetry, a, port));
        Assert.Equal("200", Tag(token, "http.response.status_code"));

        // One trace per sign-in: every page after the first is a child of the first page's span (the transaction carried
        // it), the code's redemption a child of the page that issued the code (the code's row carried it), and the RDP
        // connection's sign-in span a child of the redemption (the access token carried it); the phases after the token
        // are its children. All of it is one trace id, from the browser's first page to the RDP connection's answer.
        var signInTrace = pages[0].TraceId;
        Assert.All(pages.Skip(1), p => Assert.Equal((signInTrace, pages[0].SpanId), (p.TraceId, p.ParentSpanId)));
        var redemption = Assert.Single(telemetry.Spans, a => a.OperationName == "gatehouse.idp.code_redemption" && a.TraceId == signInTrace);
        Assert.Contains(pages, p => p.SpanId == redemption.ParentSpanId);
        // What carried it to the gateway is the token itself (not this node's memory): its gh_trace claim names the redemption.
        var payload = JsonDocument.Parse(Convert.FromBase64String(Pad(accessToken.Split('.')[1]))).RootElement;
        Assert.StartsWith($"00-{redemption.TraceId.ToHexString()}-{redemption.SpanId.ToHexString()}-", payload.GetProperty("gh_trace").GetString(), StringComparison.Ordinal);
        var rdpSignIn = Assert.Single(telemetry.Spans, a => a.OperationName == "gatehouse.rdp.sign_in" && Tag(a, "gatehouse.correlation_id") == rdp.CorrelationId);
        Assert.Equal((signInTrace, redemption.SpanId), (rdpSignIn.TraceId, rdpSignIn.ParentSpanId));
        Assert.Equal(PhasesAfterToken, telemetry.Spans.Where(a => a.ParentSpanId == rdpSignIn.SpanId).Select(a => a.OperationName));
        var inTrace = telemetry.Spans.Where(a => a.TraceId == signInTrace && a.Source.Name.StartsWith("Gatehouse", StringComparison.Ordinal)).Select(a => a.OperationName).ToHashSet();
        // Besides these, only the token endpoint's own phases (children of the redemption) are in the trace.
        var phasesOfRedemption = telemetry.Spans.Where(a => a.TraceId == signInTrace && a.ParentSpanId == redemption.SpanId && a.OperationName.StartsWith("gatehouse.idp.token.", StringComparison.Ordinal))
            .Select(a => a.OperationName).ToHashSet();
        Assert.Contains("gatehouse.idp.token.directory_reads", phasesOfRedemption);
        Assert.Equal(["gatehouse.idp.authorize", "gatehouse.idp.code_redemption", "gatehouse.rdp.answer", "gatehouse.rdp.authorization", "gatehouse.rdp.sign_in"], inTrace.Except(phasesOfRedemption).Order(StringComparer.Ordinal));
        Assert.Equal("no_role_assignment", Tag(rdpSignIn, "gatehouse.reason"));
        Assert.Equal(rdp.UserId?.ToString(), Tag(rdpSignIn, "enduser.id"));

        // Where a request starts a trace of its own, it is linked both ways with the sign-in's: the token request's span
        // with the redemption, the connection's span with its sign-in span; the proof still links to the issuing spans.
        Assert.Contains(token.Links, l => l.Context.SpanId == redemption.SpanId);
        Assert.Contains(redemption.Links, l => l.Context.SpanId == token.SpanId);
        Assert.Contains(connection.Links, l => l.Context.SpanId == rdpSignIn.SpanId);
        Assert.Contains(rdpSignIn.Links, l => l.Context.SpanId == connection.SpanId);
        var proof = Assert.Single(telemetry.Spans, a => a.ParentSpanId == connection.SpanId && a.OperationName == "gatehouse.rdp.proof");
        Assert.Contains(proof.Links, l => l.Context.SpanId == redemption.SpanId);

        // Metrics: the sign-ins of both protocols, the phase durations, database latency and the pending connections.
        var metrics = telemetry.Metrics(s.Server);
        Assert.True(Sum(metrics, "gatehouse.sign_ins", ("gatehouse.protocol", "web_account"), ("gatehouse.result", "failure"), ("gatehouse.reason", "no_role_assignment")) >= 1);
        Assert.True(Sum(metrics, "gatehouse.sign_ins", ("gatehouse.protocol", "browser"), ("gatehouse.result", "success")) >= 1);
        Assert.True(Sum(metrics, "gatehouse.rdp.phase.duration", ("gatehouse.phase", "proof")) >= 1);
        Assert.True(Sum(metrics, "gatehouse.db.duration", ("db.system", "sqlite")) >= 1);
        Assert.Contains(metrics, m => m.Name == "gatehouse.rdp.connections.pending");

        // No secret anywhere.
        AssertNoSecret(telemetry, metrics, [IdpScenario.Password, code, accessToken, refreshToken, .. accessToken.Split(".")]);
    }

    private static string Pad(string base64Url)
    {
        var text = base64Url.Replace('-', '+').Replace('_', '/');
        return text + new string('=', (4 - (text.Length % 4)) % 4);
    }

    [Fact]
    public async Task PasswordSignIn_Nla_IsTracedAndCounted_WithoutThePassword()
    {
        var telemetry = new Capture();
        await using var s = await IdpScenario.StartAsync(Overrides, telemetry.Configure);
        const string WrongPassword = "Wrong-Horse-7?";
        foreach (var password in new[] { IdpScenario.Password, WrongPassword })
        {
            var (outcome, tls, tcp) = await CredSspTestClient.RunAsync(GatehouseHost.RdpEndPoint(s.Server.App).Port, new CredSspClientOptions { User = IdpScenario.Alice, Password = password });
            using (tcp)
            await using (tls)
            {
                Assert.NotNull(outcome.Stage);
            }
        }

        // Each entry is written before the client is answered.
        var log = (await s.SignInsAsync()).Where(e => e.Protocol == "nla").ToList();
        Assert.Equal(2, log.Count);
        foreach (var entry in log)
        {
            var connection = await telemetry.WaitForSpanAsync(a => a.OperationName == "gatehouse.rdp.connection" && Tag(a, "gatehouse.correlation_id") == entry.CorrelationId);
            Assert.Equal("nla", Tag(connection, "gatehouse.protocol"));
            Assert.Equal(entry.Result, Tag(connection, "gatehouse.result"));
            Assert.Contains(telemetry.Spans, a => a.ParentSpanId == connection.SpanId && a.OperationName == "gatehouse.rdp.proof");
        }

        var metrics = telemetry.Metrics(s.Server);
        Assert.True(Sum(metrics, "gatehouse.sign_ins", ("gatehouse.protocol", "nla")) >= 2);
        AssertNoSecret(telemetry, metrics, [IdpScenario.Password, WrongPassword]);
    }

    [Fact]
    public async Task CodeInAQueryString_IsNotInTheRequestSpans()
    {
        // FreeRDP's redirect page gets the authorization code in its query string; ASP.NET Core's span leaves the query out.
        var telemetry = new Capture();
        await using var server = await TestServer.StartAsync(overrides: Overrides, configureServices: telemetry.Configure);
        const string Code = "Q29kZS1pbi1hLXF1ZXJ5LTEyMzQ1Njc4OQ";
        using var response = await server.Client.GetAsync(new Uri($"/common/oauth2/nativeclient?code={Code}&state=s1", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var request = await telemetry.WaitForSpanAsync(a => a.Kind == ActivityKind.Server && Tag(a, "url.path") == "/common/oauth2/nativeclient" && Tag(a, "server.port") == server.BaseAddress.Port.ToString(CultureInfo.InvariantCulture));
        Assert.Equal("/common/oauth2/nativeclient", Tag(request, "url.path"));
        AssertNoSecret(telemetry, [], [Code], atLeast: 5);
    }

    [Fact]
    public async Task ConsoleLog_InsideASpan_CarriesItsTraceAndSpanIds()
    {
        var telemetry = new Capture();
        await using var server = await TestServer.StartAsync(overrides: new Dictionary<string, string?>
        {
            ["Gatehouse:Telemetry:Tracing"] = "true",
            ["Logging:Console:FormatterOptions:ColorBehavior"] = "Disabled",
        }, configureServices: telemetry.Configure);
        var formatter = server.App.Services.GetServices<Microsoft.Extensions.Logging.Console.ConsoleFormatter>().Single(f => f.Name == "gatehouse");
        using var activity = new Activity("test").SetIdFormat(ActivityIdFormat.W3C).Start();
        using var writer = new StringWriter();
        formatter.Write(new Microsoft.Extensions.Logging.Abstractions.LogEntry<string>(Microsoft.Extensions.Logging.LogLevel.Information, "Gatehouse.Test", new(7), "hostile \u001b[2J\r\nwarn: forged", null, (m, _) => m), null, writer);
        var text = writer.ToString();
        Assert.StartsWith($"info: Gatehouse.Test[7] trace_id={activity.TraceId.ToHexString()} span_id={activity.SpanId.ToHexString()}\n", text, StringComparison.Ordinal);
        Assert.Contains(@"hostile \x1b[2J\r\nwarn: forged", text, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', text);
    }

    private static Dictionary<string, string?> Overrides => new()
    {
        ["Gatehouse:Gateway:SignInMethods"] = "WebAccount, Nla",
        ["Gatehouse:Telemetry:Tracing"] = "true",

        // The refusal is answered inside RDS AAD Auth (this test follows the answer phase, not the hold screen's).
        ["Gatehouse:Gateway:HoldScreen:Refusals"] = "false",
    };

    private static string? Tag(Activity activity, string key) => Convert.ToString(activity.GetTagItem(key), CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="span"/>'s parent is ASP.NET Core's request span on <paramref name="port"/> (this test's server).</summary>
    private static bool OnPort(Capture telemetry, Activity span, int port) =>
        telemetry.Spans.Any(p => p.SpanId == span.ParentSpanId && Tag(p, "server.port") == port.ToString(CultureInfo.InvariantCulture));

    private static double Sum(IReadOnlyList<MetricSnapshot> metrics, string name, params (string Key, string Value)[] tags)
    {
        double sum = 0;
        foreach (var metric in metrics.Where(m => m.Name == name))
        {
            foreach (var point in metric.MetricPoints)
            {
                var pointTags = new Dictionary<string, string?>();
                foreach (var tag in point.Tags)
                {
                    pointTags[tag.Key] = Convert.ToString(tag.Value, CultureInfo.InvariantCulture);
                }

                if (tags.All(t => pointTags.TryGetValue(t.Key, out var v) && v == t.Value))
                {
                    sum += metric.MetricType switch
                    {
                        MetricType.LongSum or MetricType.LongSumNonMonotonic => point.GetSumLong(),
                        MetricType.DoubleSum or MetricType.DoubleSumNonMonotonic => point.GetSumDouble(),
                        MetricType.Histogram => point.GetHistogramCount(),
                        _ => 0,
                    };
                }
            }
        }

        return sum;
    }

    /// <summary>Every name, attribute, event, link and status of every span, and every metric point's tags, is free of <paramref name="secrets"/>.</summary>
    private static void AssertNoSecret(Capture telemetry, IReadOnlyList<MetricSnapshot> metrics, string[] secrets, int atLeast = 50)
    {
        var texts = Texts(telemetry.Spans, metrics).ToList();
        Assert.True(texts.Count >= atLeast, $"only {texts.Count} attributes captured");
        foreach (var (where, text) in texts)
        {
            foreach (var secret in secrets.Where(x => x.Length >= 8))
            {
                Assert.False(text.Contains(secret, StringComparison.Ordinal) || text.Contains(Uri.EscapeDataString(secret), StringComparison.Ordinal), $"a secret ({secret[..4]}…) in {where}");
            }
        }
    }

    private static IEnumerable<(string Where, string Text)> Texts(IReadOnlyList<Activity> spans, IReadOnlyList<MetricSnapshot> metrics)
    {
        foreach (var span in spans)
        {
            yield return (span.OperationName, span.DisplayName);
            yield return ($"{span.OperationName} status", span.StatusDescription ?? string.Empty);
            foreach (var (key, value) in span.TagObjects)
            {
                yield return ($"{span.OperationName} {key}", Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);
            }

            foreach (var e in span.Events)
            {
                yield return ($"{span.OperationName} event", e.Name);
                foreach (var (key, value) in e.Tags)
                {
                    yield return ($"{span.OperationName} event {e.Name} {key}", Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);
                }
            }

            foreach (var link in span.Links)
            {
                foreach (var (key, value) in link.Tags ?? [])
                {
                    yield return ($"{span.OperationName} link {key}", Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty);
                }
            }

            foreach (var (key, value) in span.Baggage)
            {
                yield return ($"{span.OperationName} baggage {key}", value ?? string.Empty);
            }
        }

        foreach (var metric in metrics)
        {
            yield return (metric.Name, metric.Description);
            foreach (var point in metric.MetricPoints)
            {
                foreach (var tag in point.Tags)
                {
                    yield return ($"{metric.Name} {tag.Key}", Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty);
                }
            }
        }
    }

    private static async Task<(string AccessToken, string RefreshToken)> RedeemAsync(TestServer server, string code, RSA key)
    {
        var reqCnf = B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{Thumbprint(key)}\"}}"));
        var body = $"grant_type=authorization_code&code={code}&client_id={IdpScenario.RdpClient}&redirect_uri={Broker}&req_cnf={reqCnf}";
        using var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent(body, Encoding.ASCII, "application/x-www-form-urlencoded"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        return (json.RootElement.GetProperty("access_token").GetString()!, json.RootElement.GetProperty("refresh_token").GetString()!);
    }

    /// <summary>The identity provider's server nonce (<c>srv_challenge</c>), which the client puts in its assertion's claims.</summary>
    private static async Task<string> ServerNonceAsync(TestServer server)
    {
        using var response = await server.Client.PostAsync(new Uri("/common/oauth2/v2.0/token", UriKind.Relative), new StringContent("grant_type=srv_challenge", Encoding.ASCII, "application/x-www-form-urlencoded"));
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("Nonce").GetString()!;
    }

    private static string Thumbprint(RSA key)
    {
        var p = key.ExportParameters(false);
        return JwkThumbprint.ComputeRsa(B64(p.Exponent!), B64(p.Modulus!));
    }

    /// <summary>The request FreeRDP's aad.c builds around the access token, signed with the PoP key.</summary>
    private static byte[] Assertion(RSA key, string accessToken, string nonce, string aadNonce)
    {
        var p = key.ExportParameters(false);
        var header = $"{{\"alg\":\"RS256\",\"kid\":\"{B64(Encoding.UTF8.GetBytes($"{{\"kid\":\"{Thumbprint(key)}\"}}"))}\"}}";
        var payload = $"{{\"ts\":\"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}\",\"at\":\"{accessToken}\",\"u\":\"ms-device-service://termsrv.wvd.microsoft.com/name/vm1\",\"nonce\":\"{nonce}\",\"cnf\":{{\"jwk\":{{\"kty\":\"RSA\",\"e\":\"{B64(p.Exponent!)}\",\"n\":\"{B64(p.Modulus!)}\"}}}},\"client_claims\":\"{{\\\"aad_nonce\\\":\\\"{aadNonce}\\\"}}\"}}";
        var input = $"{B64(Encoding.UTF8.GetBytes(header))}.{B64(Encoding.UTF8.GetBytes(payload))}";
        var signature = key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return [.. Encoding.UTF8.GetBytes($"{{\"rdp_assertion\":\"{input}.{B64(signature)}\"}}"), 0];
    }

    private static string B64(byte[] bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    /// <summary>OpenTelemetry's in-memory exporters on the server's tracer and meter providers.</summary>
    private sealed class Capture
    {
        private readonly LockedList<Activity> _spans = new();
        private readonly LockedList<MetricSnapshot> _metrics = new();

        /// <summary>Every span ended so far (the providers listen to the whole process: other tests' spans are here too).</summary>
        public IReadOnlyList<Activity> Spans => _spans.Snapshot();

        public void Configure(IServiceCollection services)
        {
            services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(_spans));
            services.ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(_metrics));
        }

        public async Task<Activity> WaitForSpanAsync(Func<Activity, bool> match)
        {
            Activity? found = null;
            await Until.TrueAsync(() => (found = Spans.FirstOrDefault(match)) is not null, "the span");
            return found!;
        }

        /// <summary>The metrics of the moment (a forced collection; cumulative).</summary>
        public IReadOnlyList<MetricSnapshot> Metrics(TestServer server)
        {
            _metrics.Clear();
            // False with the Prometheus reader beside (a pull exporter does not flush); the in-memory reader has exported.
            server.App.Services.GetRequiredService<MeterProvider>().ForceFlush();
            return _metrics.Snapshot();
        }
    }

    /// <summary>A list the exporters add to from their threads while the test reads it.</summary>
    private sealed class LockedList<T> : ICollection<T>
    {
        private readonly Lock _gate = new();
        private readonly List<T> _items = [];

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public IReadOnlyList<T> Snapshot()
        {
            lock (_gate)
            {
                return [.. _items];
            }
        }

        public void Add(T item)
        {
            lock (_gate)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_gate)
            {
                _items.Clear();
            }
        }

        public bool Contains(T item) => Snapshot().Contains(item);

        public void CopyTo(T[] array, int arrayIndex) => Snapshot().ToList().CopyTo(array, arrayIndex);

        public bool Remove(T item)
        {
            lock (_gate)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<T> GetEnumerator() => Snapshot().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
