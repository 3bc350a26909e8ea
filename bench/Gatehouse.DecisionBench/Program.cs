using System.Diagnostics;
using System.Globalization;
using System.Text;
using Gatehouse.Identity;
using Gatehouse.Protocol.Crypto;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;

namespace Gatehouse.DecisionBench;

/// <summary>
/// Prints, for docs/decisions, whether each candidate passes the same published vectors as the repository's code, and
/// what one operation costs in time and managed allocation. Arguments: any of <c>totp</c>, <c>ntlm</c>, <c>password</c>
/// (default: all three).
/// </summary>
internal static class Program
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static int Main(string[] args)
    {
        var parts = args.Length == 0 ? ["totp", "ntlm", "password"] : args;
        Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:u}");
        var failures = 0;
        foreach (var part in parts)
        {
            failures += part switch
            {
                "totp" => TotpPart(),
                "ntlm" => NtlmPart(),
                "password" => PasswordPart(),
                _ => throw new ArgumentException($"unknown part {part}"),
            };
        }

        Console.WriteLine(failures == 0 ? "all vectors pass" : $"{failures} vector(s) FAILED");
        return failures == 0 ? 0 : 1;
    }

    // --- (a) TOTP: RFC 6238 Appendix B, SHA-1 rows -------------------------------------------------------------------
    private static int TotpPart()
    {
        Console.WriteLine("\n## TOTP (RFC 6238 Appendix B, SHA-1, 8 digits)");
        var secret = Encoding.ASCII.GetBytes("12345678901234567890");
        (long Time, string Code)[] vectors =
        [
            (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
            (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
        ];
        var failures = 0;
        foreach (var (time, code) in vectors)
        {
            var ours = Totp.Compute(secret, time / 30, 8);
            var otpNet = new OtpNet.Totp(secret, 30, OtpNet.OtpHashMode.Sha1, 8).ComputeTotp(DateTimeOffset.FromUnixTimeSeconds(time).UtcDateTime);
            var ok = ours == code && otpNet == code;
            failures += ok ? 0 : 1;
            Console.WriteLine($"  T={time,-12} expected {code} ours {ours} Otp.NET {otpNet} {(ok ? "ok" : "MISMATCH")}");
        }

        var now = DateTimeOffset.FromUnixTimeSeconds(1_765_000_000);
        var code6 = Totp.Compute(secret, Totp.StepAt(now), 6);
        var otp = new OtpNet.Totp(secret);
        Measure("ours: Compute (6 digits)", () => Totp.Compute(secret, 58_833_333, 6).Length);
        Measure("Otp.NET: new Totp + ComputeTotp", () => new OtpNet.Totp(secret).ComputeTotp(now.UtcDateTime).Length);
        Measure("ours: TryVerify (+-1 step)", () => Totp.TryVerify(secret, code6, now, 0, out _) ? 1 : 0);
        Measure("Otp.NET: VerifyTotp (+-1 step)", () => otp.VerifyTotp(now.UtcDateTime, code6, out _, new OtpNet.VerificationWindow(1, 1)) ? 1 : 0);
        var base32 = Totp.Base32Encode(secret, pad: false);
        var sameBase32 = OtpNet.Base32Encoding.ToString(secret).TrimEnd('=') == base32
            && OtpNet.Base32Encoding.ToBytes(base32).AsSpan().SequenceEqual(secret);
        Console.WriteLine($"  Base32 of the secret agrees: {sameBase32}");
        return failures + (sameBase32 ? 0 : 1);
    }

    // --- (b) MD4 and RC4 for NTLM ----------------------------------------------------------------------------------
    private static int NtlmPart()
    {
        Console.WriteLine("\n## MD4 (RFC 1320 A.5), RC4 (RFC 6229), NT hash ([MS-NLMP] 4.2.1)");
        (string Input, string Digest)[] md4 =
        [
            ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
            ("a", "bde52cb31de33e46245e05fbdbd6fb24"),
            ("abc", "a448017aaf21d8525fc10ae87aa6729d"),
            ("message digest", "d9130a8164549fe818874806e1c7014b"),
            ("abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
            ("12345678901234567890123456789012345678901234567890123456789012345678901234567890", "e33b4ddc9c38f2199c3e7b164fcc0536"),
        ];
        var failures = 0;
        foreach (var (input, digest) in md4)
        {
            var bytes = Encoding.ASCII.GetBytes(input);
            var ours = Convert.ToHexStringLower(Md4.HashData(bytes));
            var bc = Convert.ToHexStringLower(BcMd4(bytes));
            var ok = ours == digest && bc == digest;
            failures += ok ? 0 : 1;
            Console.WriteLine($"  MD4 \"{(input.Length > 20 ? input[..20] + "..." : input)}\" ours {(ours == digest ? "ok" : "MISMATCH")} BouncyCastle {(bc == digest ? "ok" : "MISMATCH")}");
        }

        var ntHash = Convert.ToHexStringLower(Md4.HashData(Encoding.Unicode.GetBytes("Password")));
        var ntHashBc = Convert.ToHexStringLower(BcMd4(Encoding.Unicode.GetBytes("Password")));
        var ntOk = ntHash == "a4f49c406510bdcab6824ee7c30fd852" && ntHashBc == ntHash;
        failures += ntOk ? 0 : 1;
        Console.WriteLine($"  NT hash of \"Password\" ours {ntHash} BouncyCastle {ntHashBc} {(ntOk ? "ok" : "MISMATCH")}");

        // RFC 6229, key 0x0102030405: keystream at offsets 0 and 16 (encrypting zeros yields the keystream).
        var key = Convert.FromHexString("0102030405");
        const string Expected = "b2396305f03dc027ccc3524a0a1118a86982944f18fc82d589c403a47a0d0919";
        var zeros = new byte[32];
        var rc4Ours = Convert.ToHexStringLower(Rc4.Transform(key, zeros));
        var rc4Bc = Convert.ToHexStringLower(BcRc4(key, zeros));
        var rc4Ok = rc4Ours == Expected && rc4Bc == Expected;
        failures += rc4Ok ? 0 : 1;
        Console.WriteLine($"  RC4 RFC 6229 key 0102030405 offsets 0-31 ours {(rc4Ours == Expected ? "ok" : "MISMATCH")} BouncyCastle {(rc4Bc == Expected ? "ok" : "MISMATCH")}");

        var password = Encoding.Unicode.GetBytes("Correct horse battery staple!");
        var mib = new byte[1 << 20];
        Random.Shared.NextBytes(mib);
        var sessionKey = new byte[16];
        Measure("ours: MD4 NT hash (58 bytes)", () => Md4.HashData(password)[0]);
        Measure("BouncyCastle: MD4 NT hash (58 bytes)", () => BcMd4(password)[0]);
        Measure("ours: MD4 1 MiB", () => Md4.HashData(mib)[0], megabytes: 1);
        Measure("BouncyCastle: MD4 1 MiB", () => BcMd4(mib)[0], megabytes: 1);
        Measure("ours: RC4 key exchange (16 bytes)", () => Rc4.Transform(key, sessionKey)[0]);
        Measure("BouncyCastle: RC4 key exchange (16 bytes)", () => BcRc4(key, sessionKey)[0]);
        Measure("ours: RC4 1 MiB", () => Rc4.Transform(key, mib)[0], megabytes: 1);
        Measure("BouncyCastle: RC4 1 MiB", () => BcRc4(key, mib)[0], megabytes: 1);
        var dll = typeof(MD4Digest).Assembly.Location;
        Console.WriteLine($"  BouncyCastle.Cryptography.dll: {new FileInfo(dll).Length / 1024} KiB; ours: Md4.cs + Rc4.cs, 175 lines");
        return failures;
    }

    private static byte[] BcMd4(byte[] input)
    {
        var digest = new MD4Digest();
        digest.BlockUpdate(input, 0, input.Length);
        var output = new byte[16];
        digest.DoFinal(output, 0);
        return output;
    }

    private static byte[] BcRc4(byte[] key, byte[] input)
    {
        var rc4 = new RC4Engine();
        rc4.Init(true, new KeyParameter(key));
        var output = new byte[input.Length];
        rc4.ProcessBytes(input, 0, input.Length, output, 0);
        return output;
    }

    // --- (c) Password hashing --------------------------------------------------------------------------------------
    private static int PasswordPart()
    {
        Console.WriteLine("\n## Password hashing");
        var failures = 0;

        // RFC 9106 5.3 Argon2id test vector (secret and associated data: Konscious and BouncyCastle take them; NSec does not).
        const string Rfc9106 = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659";
        var pwd = Enumerable.Repeat((byte)0x01, 32).ToArray();
        var salt = Enumerable.Repeat((byte)0x02, 16).ToArray();
        var secret = Enumerable.Repeat((byte)0x03, 8).ToArray();
        var ad = Enumerable.Repeat((byte)0x04, 12).ToArray();
        using (var konscious = new Konscious.Security.Cryptography.Argon2id(pwd) { Salt = salt, KnownSecret = secret, AssociatedData = ad, DegreeOfParallelism = 4, Iterations = 3, MemorySize = 32 })
        {
            var k = Convert.ToHexStringLower(konscious.GetBytes(32));
            var b = Convert.ToHexStringLower(BcArgon2(pwd, salt, 32, 3, 4, secret, ad));
            var ok = k == Rfc9106 && b == Rfc9106;
            failures += ok ? 0 : 1;
            Console.WriteLine($"  RFC 9106 Argon2id vector: Konscious {(k == Rfc9106 ? "ok" : "MISMATCH " + k)} BouncyCastle {(b == Rfc9106 ? "ok" : "MISMATCH " + b)}");
        }

        // The three implementations agree on a plain password/salt at the OWASP setting.
        var password = Encoding.UTF8.GetBytes("Correct horse battery staple!");
        var salt16 = Convert.FromHexString("000102030405060708090a0b0c0d0e0f");
        var kon = Konscious(password, salt16, 19 * 1024, 2, 1);
        var bcv = BcArgon2(password, salt16, 19 * 1024, 2, 1, null, null);
        var ns = NSecArgon2(password, salt16, 19 * 1024, 2);
        var agree = kon.AsSpan().SequenceEqual(bcv) && kon.AsSpan().SequenceEqual(ns);
        failures += agree ? 0 : 1;
        Console.WriteLine($"  m=19 MiB t=2 p=1: Konscious, BouncyCastle and NSec (libsodium) agree: {agree}");

        var hasher = new PasswordHasher();
        var pbkdfSalt = System.Security.Cryptography.RandomNumberGenerator.GetBytes(16);
        var pbkdf = System.Security.Cryptography.Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes("Correct horse battery staple!"), pbkdfSalt, PasswordHasher.MinimumIterations, System.Security.Cryptography.HashAlgorithmName.SHA512, 64);
        var stored = $"$pbkdf2-sha512$i={PasswordHasher.MinimumIterations}${Convert.ToBase64String(pbkdfSalt)}${Convert.ToBase64String(pbkdf)}";
        Measure("PBKDF2-HMAC-SHA512 210,000 (before) verify", () => (int)hasher.Verify(stored, "Correct horse battery staple!"), repeats: 10);
        var argonStored = hasher.Hash("Correct horse battery staple!");
        Measure($"Gatehouse PasswordHasher Argon2id m={hasher.MemoryKib} KiB t={hasher.Iterations} verify (adopted)", () => (int)hasher.Verify(argonStored, "Correct horse battery staple!"), repeats: 20);
        foreach (var (m, t) in new[] { (19 * 1024, 2), (46 * 1024, 1), (64 * 1024, 3) })
        {
            var label = $"m={m / 1024} MiB t={t} p=1";
            Measure($"Argon2id {label} NSec (libsodium)", () => NSecArgon2(password, salt16, m, t)[0], repeats: 10);
            Measure($"Argon2id {label} Konscious", () => Konscious(password, salt16, m, t, 1)[0], repeats: 5);
            Measure($"Argon2id {label} BouncyCastle", () => BcArgon2(password, salt16, m, t, 1, null, null)[0], repeats: 5);
        }

        return failures;
    }

    private static byte[] Konscious(byte[] password, byte[] salt, int memoryKib, int iterations, int parallelism)
    {
        using var argon = new Konscious.Security.Cryptography.Argon2id(password) { Salt = salt, DegreeOfParallelism = parallelism, Iterations = iterations, MemorySize = memoryKib };
        return argon.GetBytes(32);
    }

    private static byte[] BcArgon2(byte[] password, byte[] salt, int memoryKib, int iterations, int parallelism, byte[]? secret, byte[]? ad)
    {
        var builder = new Argon2Parameters.Builder(Argon2Parameters.Argon2id)
            .WithVersion(Argon2Parameters.Version13).WithIterations(iterations).WithMemoryAsKB(memoryKib).WithParallelism(parallelism).WithSalt(salt);
        if (secret is not null)
        {
            builder = builder.WithSecret(secret);
        }

        if (ad is not null)
        {
            builder = builder.WithAdditional(ad);
        }

        var generator = new Argon2BytesGenerator();
        generator.Init(builder.Build());
        var output = new byte[32];
        generator.GenerateBytes(password, output);
        return output;
    }

    private static byte[] NSecArgon2(byte[] password, byte[] salt, int memoryKib, int passes)
    {
        var algorithm = NSec.Cryptography.PasswordBasedKeyDerivationAlgorithm.Argon2id(
            new NSec.Cryptography.Argon2Parameters { DegreeOfParallelism = 1, MemorySize = memoryKib, NumberOfPasses = passes });
        return algorithm.DeriveBytes(password, salt, 32);
    }

    // --- Measurement -----------------------------------------------------------------------------------------------

    /// <summary>Runs <paramref name="op"/> for about a second (or <paramref name="repeats"/> times) after a warm-up and prints the cost.</summary>
    private static void Measure(string name, Func<int> op, int repeats = 0, int megabytes = 0)
    {
        var sink = 0;
        for (var i = 0; i < (repeats > 0 ? 1 : 1000); i++)
        {
            sink += op();
        }

        var before = GC.GetTotalAllocatedBytes(precise: true);
        var clock = Stopwatch.StartNew();
        long count = 0;
        if (repeats > 0)
        {
            for (; count < repeats; count++)
            {
                sink += op();
            }
        }
        else
        {
            while (clock.ElapsedMilliseconds < 1000)
            {
                for (var i = 0; i < 100; i++)
                {
                    sink += op();
                }

                count += 100;
            }
        }

        clock.Stop();
        var allocated = (GC.GetTotalAllocatedBytes(precise: true) - before) / (double)count;
        var micros = clock.Elapsed.TotalMicroseconds / count;
        var rate = megabytes > 0 ? string.Create(Inv, $"{megabytes * count / clock.Elapsed.TotalSeconds,8:0.0} MiB/s") : "";
        Console.WriteLine(string.Create(Inv, $"  {name,-50} {FormatTime(micros),12} {allocated,12:N0} B/op {rate} (n={count}, {sink & 1})"));
    }

    private static string FormatTime(double micros) =>
        micros >= 1000 ? string.Create(Inv, $"{micros / 1000:0.0} ms") : string.Create(Inv, $"{micros:0.00} us");
}
