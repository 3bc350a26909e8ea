using System.CommandLine;
using System.Globalization;
using System.Xml.Linq;
using Gatehouse.Storage.KeyRing;

namespace Gatehouse.Cli;

/// <summary>
/// <c>gatehouse keyring show|rotate</c>: the Data Protection key ring and the key-encryption key that seals it, on the
/// server's machine (the store directly, never <c>--server</c>).
/// </summary>
internal static class KeyRingCommands
{
    public static Command Create(CliEnvironment environment)
    {
        var data = new Option<string?>("--data")
        {
            Description = "The server's data directory (default ./data).",
            Recursive = true,
        };
        var store = new Option<string?>("--store")
        {
            Description = "The server's PostgreSQL connection string (Host=…;Database=…;Username=…;Password=…) instead of --data.",
            Recursive = true,
        };
        var command = new Command(
            "keyring",
            "The Data Protection key ring (it seals host passwords, TOTP secrets, the signing key and the sign-in log head) and its key-encryption key, "
            + "read from Gatehouse__KeyRing__KeyFile (default DATA/keyring.kek) or Gatehouse__KeyRing__Key. Run it on the server's machine as the account that runs Gatehouse.")
        {
            data,
            store,
        };

        var show = new Command("show", "Show where the key-encryption key comes from, its fingerprint, and how each Data Protection key is stored.");
        show.SetAction((parse, ct) => RunAsync(parse, environment, data, store, create: false, async (keyRing, output) =>
        {
            var status = keyRing.Prepare(reencrypt: false);
            await WriteStatusAsync(output, keyRing, status).ConfigureAwait(false);
            return ExitCodes.Ok;
        }, ct));

        var rotate = new Command(
            "rotate",
            "Replace the key-encryption key with a new one and re-encrypt every Data Protection key with it (safe to run again if interrupted). "
            + "Then copy the key file to every node that shares the store and back it up; the old key no longer opens anything. "
            + "With Gatehouse__KeyRing__Key=\"NEW,OLD\" it re-encrypts with NEW instead: then give every node NEW alone.");
        rotate.SetAction((parse, ct) => RunAsync(parse, environment, data, store, create: true, async (keyRing, output) =>
        {
            var before = keyRing.Prepare(reencrypt: false);
            var status = keyRing.Rotate();
            if (keyRing.FromConfiguration)
            {
                await output.WriteLineAsync(status.Keys.Fingerprints.Count > 1 || status.Reencrypted > 0
                    ? $"Re-encrypted {status.Reencrypted} Data Protection key(s) with the key-encryption key {status.Keys.PrimaryFingerprint} (the first in Gatehouse__KeyRing__Key). Now give every node that key alone."
                    : "Gatehouse__KeyRing__Key gives the key-encryption key, so it cannot be replaced here: put a new key first (Gatehouse__KeyRing__Key=\"NEW,OLD\", NEW from 'openssl rand -base64 32'), run this command again with it, then give every node NEW alone.").ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(
                    $"Replaced the key-encryption key {before.Keys.PrimaryFingerprint} with {status.Keys.PrimaryFingerprint} in {keyRing.KeyFile} and re-encrypted {status.Reencrypted} Data Protection key(s) with it. "
                    + "Copy that file to every node that shares this store, and back it up: the old key file no longer opens anything.").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }, ct));

        command.Subcommands.Add(show);
        command.Subcommands.Add(rotate);
        return command;
    }

    private static async Task<int> RunAsync(
        ParseResult parse,
        CliEnvironment environment,
        Option<string?> data,
        Option<string?> store,
        bool create,
        Func<KeyRingKeySource, TextWriter, Task<int>> action,
        CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        var name = $"gatehouse keyring {parse.CommandResult.Command.Name}";
        try
        {
            var location = AdminStoreLocation.From(parse.GetValue(data), parse.GetValue(store), environment) with { CreateKeyFile = create };
            await using var opened = await AdminStore.OpenAsync(location, environment.Time, create: false, cancellationToken).ConfigureAwait(false);
            return await action(opened.Get<KeyRingKeySource>(), output).ConfigureAwait(false);
        }
        catch (CliException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (KeyRingException e)
        {
            await error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"{name}: {e.Message} Run the command as the account that runs the server.").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
    }

    private static async Task WriteStatusAsync(TextWriter output, KeyRingKeySource keyRing, KeyRingStatus status)
    {
        await output.WriteLineAsync($"Key-encryption key: {status.Keys.PrimaryFingerprint} from {status.Keys.Source}").ConfigureAwait(false);
        if (status.Keys.Fingerprints.Count > 1)
        {
            await output.WriteLineAsync($"Also decrypts with: {string.Join(", ", status.Keys.Fingerprints.Skip(1))}").ConfigureAwait(false);
        }

        await output.WriteLineAsync($"Key ring stored in: {(keyRing.Repository is PrivateFileXmlRepository files ? files.Directory : "the database (DataProtectionKeys)")}").ConfigureAwait(false);
        foreach (var key in keyRing.Repository.GetAllElements().Where(e => e.Name.LocalName == "key"))
        {
            await output.WriteLineAsync(
                $"Key {key.Attribute("id")?.Value}: created {Date(key, "creationDate")}, expires {Date(key, "expirationDate")}, {Protection(key)}").ConfigureAwait(false);
        }

        if (status.Unencrypted > 0)
        {
            await output.WriteLineAsync($"{status.Unencrypted} key(s) are stored unencrypted: 'gatehouse serve' encrypts them when it starts.").ConfigureAwait(false);
        }
    }

    private static string Date(XElement key, string name) =>
        DateTimeOffset.TryParse(key.Element(name)?.Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value) ? CliRunner.Format(value) : "-";

    private static string Protection(XElement key) =>
        key.Descendants().FirstOrDefault(e => e.Name.LocalName == "aesGcm" && e.Attribute("kek") is not null) is { } sealedKey
            ? $"encrypted with {sealedKey.Attribute("kek")!.Value}"
            : key.Descendants().Any(e => e.Name.LocalName == "encryptedSecret") ? "encrypted by another key store" : "UNENCRYPTED";
}
