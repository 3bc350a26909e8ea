namespace Gatehouse.Server.Tests.Cli;

/// <summary><c>gatehouse connect-command</c> and <c>gatehouse rdp-file</c>: exact output from the server's configuration.</summary>
public sealed class ClientCommandsTests
{
    private static async Task<(CliHarness Cli, string Config)> WithHostAsync(string publicName = "login.contoso.test:8443", int rdpPort = 3390)
    {
        var cli = await CliHarness.CreateAsync();
        await cli.OkWithInputAsync("Alice-Pw-12345\n", "user", "create", "--upn", "Alice@contoso.test", "--password-stdin");
        await cli.OkWithInputAsync(
            "User-Pw-1\n",
            "host", "create", "--name", "vm1", "--backend", "127.0.0.5:1", "--backend-security", "tls", "--alias", "build-box",
            "--user-account", "rdpuser", "--user-password-stdin");
        var config = Path.Combine(cli.DataDirectory, "gatehouse.json");
        await File.WriteAllTextAsync(config, $$"""{ "Gatehouse": { "PublicName": "{{publicName}}", "RdpPort": {{rdpPort}} } }""");
        return (cli, config);
    }

    [Fact]
    public async Task ConnectCommand_FromServerConfiguration_HostLabelInFrontOfPublicHost()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.OkAsync("connect-command", "--host", "VM1", "--config", config);

        Assert.Equal("xfreerdp3 /v:vm1.login.contoso.test:3390 /sec:aad /azure:ad:login.contoso.test:8443\n", run.Output.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("tenantid", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectCommand_AliasAndGatewayAddressAndPort_Overrides()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.OkAsync("connect-command", "--host", "build-box", "--gateway-address", "rdp.contoso.test", "--rdp-port", "3389", "--config", config);

        Assert.Equal("xfreerdp3 /v:build-box.rdp.contoso.test:3389 /sec:aad /azure:ad:login.contoso.test:8443\n", run.Output.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("127.0.0.1:8443", null, "is not a DNS name")]
    [InlineData("login.contoso.test", "10.1.2.3", "is not a DNS name")]
    public async Task ConnectCommand_IpAddressAsGateway_RefusedWithWhatToDo(string publicName, string? gatewayAddress, string sentence)
    {
        var (cli, config) = await WithHostAsync(publicName);
        await using var _ = cli;
        string[] args = gatewayAddress is null
            ? ["connect-command", "--host", "vm1", "--config", config]
            : ["connect-command", "--host", "vm1", "--config", config, "--gateway-address", gatewayAddress];

        var run = await cli.RunAsync(args);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains(sentence, run.Error, StringComparison.Ordinal);
        Assert.Contains("--gateway-address NAME", run.Error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public async Task ConnectCommand_UnknownHost_SaysHowToFindIt()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.RunAsync("connect-command", "--host", "vm9", "--config", config);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("There is no host 'vm9'. 'gatehouse host list' shows the hosts.", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RdpFile_WithUserToFile_ExactProperties()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;
        var file = Path.Combine(cli.DataDirectory, "vm1.rdp");

        var run = await cli.OkAsync("rdp-file", "--host", "vm1", "--user", "alice@CONTOSO.test", "--out", file, "--config", config);

        Assert.Contains($"Wrote {file}", run.Output, StringComparison.Ordinal);
        Assert.Equal(
            "full address:s:vm1.login.contoso.test:3390\r\n"
            + "enablerdsaadauth:i:1\r\n"
            + "targetisaadjoined:i:1\r\n"
            + "username:s:Alice@contoso.test\r\n"
            + "authentication level:i:2\r\n"
            + "prompt for credentials:i:0\r\n"
            + "prompt for credentials on client:i:0\r\n"
            + "enablecredsspsupport:i:1\r\n"
            + "screen mode id:i:2\r\n",
            await File.ReadAllTextAsync(file));
        Assert.NotEqual(0xEF, (await File.ReadAllBytesAsync(file))[0]);
    }

    [Fact]
    public async Task RdpFile_NoUser_ToStandardOutput_NoUsernameLine()
    {
        var (cli, config) = await WithHostAsync("gw.example.org");
        await using var _ = cli;

        var run = await cli.OkAsync("rdp-file", "--host", "build-box", "--config", config);

        Assert.StartsWith("full address:s:build-box.gw.example.org:3390\r\nenablerdsaadauth:i:1\r\ntargetisaadjoined:i:1\r\nauthentication level:i:2\r\n", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("username:s:", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RdpFile_QrSignIn_TlsWithoutCredSsp_NoUserAndNoWebAccount()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.OkAsync("rdp-file", "--host", "vm1", "--qr-sign-in", "--config", config);

        Assert.Equal(
            "full address:s:vm1.login.contoso.test:3390\r\n"
            + "enablecredsspsupport:i:0\r\n"
            + "enablerdsaadauth:i:0\r\n"
            + "negotiate security layer:i:1\r\n"
            + "authentication level:i:2\r\n"
            + "prompt for credentials:i:0\r\n"
            + "prompt for credentials on client:i:0\r\n"
            + "screen mode id:i:2\r\n",
            run.Output);
        var refused = await cli.RunAsync("rdp-file", "--host", "vm1", "--qr-sign-in", "--user", "alice@contoso.test", "--config", config);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("--user does not go with --qr-sign-in", refused.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConnectCommand_QrSignIn_TlsWithAnEmptyPassword()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.OkAsync("connect-command", "--host", "vm1", "--qr-sign-in", "--config", config);

        Assert.Equal("xfreerdp3 /v:vm1.login.contoso.test:3390 /sec:tls /u:qr /p:\n", run.Output.ReplaceLineEndings("\n"));
    }

    [Fact]
    public async Task RdpFile_UnknownUser_Refused()
    {
        var (cli, config) = await WithHostAsync();
        await using var _ = cli;

        var run = await cli.RunAsync("rdp-file", "--host", "vm1", "--user", "mallory@contoso.test", "--config", config);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("There is no user 'mallory@contoso.test'", run.Error, StringComparison.Ordinal);
    }
}
