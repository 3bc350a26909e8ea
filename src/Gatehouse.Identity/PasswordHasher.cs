using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Gatehouse.Identity;

/// <summary>Outcome of <see cref="PasswordHasher.Verify(string, string)"/>.</summary>
public enum PasswordVerification
{
    /// <summary>Wrong password or unreadable hash.</summary>
    Failed = 0,

    /// <summary>The password matches.</summary>
    Success = 1,

    /// <summary>The password matches but the hash is PBKDF2 or weaker Argon2id: store <see cref="PasswordHasher.Hash"/> again.</summary>
    SuccessRehashNeeded = 2,
}

/// <summary>Why a stored hash string cannot be used (<see cref="PasswordHasher.Inspect"/>); a tampered row is one of these, never an exception.</summary>
public enum PasswordHashFormatError
{
    /// <summary>The string is a usable hash.</summary>
    None = 0,

    /// <summary>Longer than <see cref="PasswordHasher.MaxHashChars"/> characters.</summary>
    TooLong = 1,

    /// <summary>Neither <c>$argon2id$</c> nor <c>$pbkdf2-sha512$</c>.</summary>
    UnknownAlgorithm = 2,

    /// <summary>An Argon2id version other than <c>v=19</c> (0x13).</summary>
    UnsupportedVersion = 3,

    /// <summary>The parameter field is not <c>m=&lt;digits&gt;,t=&lt;digits&gt;,p=&lt;digits&gt;</c> (or <c>i=&lt;digits&gt;</c> for PBKDF2).</summary>
    MalformedParameters = 4,

    /// <summary>A parameter outside the caps (Argon2id m ≤ 1 GiB, t ≤ 10, p ≤ 4; PBKDF2 i ≤ 10 000 000): refused before any work is done.</summary>
    ParametersOutOfRange = 5,

    /// <summary>Argon2id with p ≠ 1: valid Argon2id, but libsodium computes only p = 1.</summary>
    UnsupportedParallelism = 6,

    /// <summary>The salt is not base64 of the expected length.</summary>
    BadSalt = 7,

    /// <summary>The hash is not base64 of 16–64 bytes (PBKDF2: 32–64).</summary>
    BadHash = 8,

    /// <summary>Fields missing or extra.</summary>
    MalformedFields = 9,
}

/// <summary>
/// Argon2id cost of new password hashes and the bound on concurrent hashing (configuration
/// <c>Gatehouse:Identity:PasswordHashing</c>). Each hash in progress holds <see cref="MemoryKib"/> KiB of native memory,
/// so <see cref="MaxConcurrentHashes"/> × <see cref="MemoryKib"/> bounds the memory all sign-ins can take at once.
/// </summary>
public sealed class PasswordHashingOptions
{
    /// <summary>OWASP's minimum memory at t = 2: 19 MiB.</summary>
    public const int MinimumMemoryKib = 19 * 1024;

    /// <summary>OWASP's minimum passes at 19 MiB.</summary>
    public const int MinimumIterations = 2;

    /// <summary>Memory per hash in KiB (default and minimum 19 456 = 19 MiB).</summary>
    public int MemoryKib { get; set; } = MinimumMemoryKib;

    /// <summary>Passes over the memory (default and minimum 2).</summary>
    public int Iterations { get; set; } = MinimumIterations;

    /// <summary>Hashes computed at once by this process; more wait (bounded by the request's cancellation). 0 means 2 × processor count.</summary>
    public int MaxConcurrentHashes { get; set; }

    /// <summary>Throws when a value is below OWASP's minimum or above the caps a stored hash may carry.</summary>
    public void Validate()
    {
        if (MemoryKib < MinimumMemoryKib || MemoryKib > PasswordHasher.MaximumMemoryKib)
        {
            throw new ArgumentOutOfRangeException(nameof(MemoryKib), MemoryKib, $"Gatehouse:Identity:PasswordHashing:MemoryKib must be between {MinimumMemoryKib} (19 MiB, OWASP's minimum) and {PasswordHasher.MaximumMemoryKib}.");
        }

        if (Iterations < MinimumIterations || Iterations > PasswordHasher.MaximumArgonIterations)
        {
            throw new ArgumentOutOfRangeException(nameof(Iterations), Iterations, $"Gatehouse:Identity:PasswordHashing:Iterations must be between {MinimumIterations} and {PasswordHasher.MaximumArgonIterations}.");
        }

        if (MaxConcurrentHashes < 0 || MaxConcurrentHashes > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrentHashes), MaxConcurrentHashes, "Gatehouse:Identity:PasswordHashing:MaxConcurrentHashes must be between 0 (2 × processors) and 1024.");
        }
    }
}

/// <summary>
/// Password hashes. New hashes are Argon2id through libsodium (NSec), in the PHC string format
/// <c>$argon2id$v=19$m=&lt;KiB&gt;,t=&lt;passes&gt;,p=1$&lt;salt&gt;$&lt;hash&gt;</c> (unpadded base64, 16-byte salt, 32-byte hash).
/// Older PBKDF2-HMAC-SHA512 hashes (<c>$pbkdf2-sha512$i=&lt;iterations&gt;$&lt;salt&gt;$&lt;hash&gt;</c>) still verify and
/// ask for a rehash. Hashing is bounded by a semaphore: each Argon2id computation holds its memory cost natively.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "The SemaphoreSlim never creates its wait handle (AvailableWaitHandle is not used), so there is nothing to dispose; the hasher lives as long as the process.")]
public sealed class PasswordHasher
{
    /// <summary>The PBKDF2 iteration count of hashes written before Argon2id; every PBKDF2 hash is rehashed at its next sign-in.</summary>
    public const int MinimumIterations = 210_000;

    /// <summary>PBKDF2 hashes carrying more iterations than this are refused (a tampered row must not stall sign-in).</summary>
    public const int MaximumIterations = 10_000_000;

    /// <summary>Argon2id hashes asking for more memory than this (1 GiB) are refused before anything is allocated.</summary>
    public const int MaximumMemoryKib = 1024 * 1024;

    /// <summary>Argon2id hashes asking for more passes than this are refused.</summary>
    public const int MaximumArgonIterations = 10;

    /// <summary>Argon2id hashes asking for more lanes than this are refused as out of range (and p ≠ 1 as unsupported).</summary>
    public const int MaximumParallelism = 4;

    /// <summary>The longest stored hash string read.</summary>
    public const int MaxHashChars = 512;

    private const string ArgonPrefix = "$argon2id$";
    private const string PbkdfPrefix = "$pbkdf2-sha512$i=";
    private const int SaltBytes = 16;
    private const int ArgonHashBytes = 32;
    private const int MaxPasswordChars = 1024;
    private const int MinimumArgonMemoryKib = 8;

    private readonly SemaphoreSlim gate;
    private readonly Lazy<string> dummyHash;

    /// <summary>Creates a hasher with <paramref name="options"/> (default: m = 19 MiB, t = 2, 2 × processors at once).</summary>
    public PasswordHasher(PasswordHashingOptions? options = null)
    {
        options ??= new PasswordHashingOptions();
        options.Validate();
        MemoryKib = options.MemoryKib;
        Iterations = options.Iterations;
        MaxConcurrentHashes = options.MaxConcurrentHashes > 0 ? options.MaxConcurrentHashes : 2 * Environment.ProcessorCount;
        gate = new SemaphoreSlim(MaxConcurrentHashes, MaxConcurrentHashes);
        dummyHash = new Lazy<string>(() => HashUngated(Guid.NewGuid().ToString(), MemoryKib, Iterations));
    }

    /// <summary>A hash of a random password at this hasher's parameters: verifying against it costs what a real check costs (unknown accounts).</summary>
    public string DummyHash => dummyHash.Value;

    /// <summary>Argon2id memory (KiB) of new hashes.</summary>
    public int MemoryKib { get; }

    /// <summary>Argon2id passes of new hashes.</summary>
    public int Iterations { get; }

    /// <summary>How many hashes run at once.</summary>
    public int MaxConcurrentHashes { get; }

    /// <summary>Hashes in progress now (for tests and metrics).</summary>
    public int HashesInProgress => MaxConcurrentHashes - gate.CurrentCount;

    /// <summary>Hashes <paramref name="password"/> with a fresh 128-bit salt (waits for a hashing slot without a time bound).</summary>
    public string Hash(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(password.Length, MaxPasswordChars);
        gate.Wait();
        try
        {
            return HashUngated(password, MemoryKib, Iterations);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>As <see cref="Hash"/>; the wait for a hashing slot ends with <paramref name="cancellationToken"/>.</summary>
    public async Task<string> HashAsync(string password, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(password.Length, MaxPasswordChars);
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return HashUngated(password, MemoryKib, Iterations);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>Checks <paramref name="password"/> against <paramref name="hash"/> in constant time.</summary>
    public PasswordVerification Verify(string hash, string password) => Verify(hash, password, out _);

    /// <summary>As <see cref="Verify(string, string)"/>; the wait for a hashing slot ends with <paramref name="cancellationToken"/>.</summary>
    public async Task<PasswordVerification> VerifyAsync(string hash, string password, CancellationToken cancellationToken = default)
    {
        var (result, _) = await VerifyWithFingerprintAsync(hash, password, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>Why <paramref name="hash"/> cannot be used, or <see cref="PasswordHashFormatError.None"/>; does no hashing work.</summary>
    public static PasswordHashFormatError Inspect(string hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        return TryParse(hash, out _);
    }

    /// <summary>As <see cref="Verify(string, string)"/>; <paramref name="fingerprint"/> is the first 8 bytes of the derived value (base64) or empty.</summary>
    internal PasswordVerification Verify(string hash, string password, out string fingerprint)
    {
        ArgumentNullException.ThrowIfNull(hash);
        ArgumentNullException.ThrowIfNull(password);
        fingerprint = "";
        if (password.Length > MaxPasswordChars || TryParse(hash, out var parsed) != PasswordHashFormatError.None)
        {
            return PasswordVerification.Failed;
        }

        gate.Wait();
        try
        {
            return Check(parsed, password, out fingerprint);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>As <see cref="Verify(string, string, out string)"/>, asynchronously, the wait bounded by <paramref name="cancellationToken"/>.</summary>
    internal async Task<(PasswordVerification Result, string Fingerprint)> VerifyWithFingerprintAsync(string hash, string password, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hash);
        ArgumentNullException.ThrowIfNull(password);
        if (password.Length > MaxPasswordChars || TryParse(hash, out var parsed) != PasswordHashFormatError.None)
        {
            return (PasswordVerification.Failed, "");
        }

        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var result = Check(parsed, password, out var fingerprint);
            return (result, fingerprint);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>An Argon2id hash with any parameters (libsodium's own minimums apply), without the gate: for tests and measurements.</summary>
    internal static string HashUngated(string password, int memoryKib, int iterations)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Argon2(password, salt, memoryKib, iterations, ArgonHashBytes);
        return string.Create(CultureInfo.InvariantCulture, $"{ArgonPrefix}v=19$m={memoryKib},t={iterations},p=1${Unpadded(salt)}${Unpadded(hash)}");
    }

    private PasswordVerification Check(ParsedHash parsed, string password, out string fingerprint)
    {
        var actual = parsed.Argon
            ? Argon2(password, parsed.Salt, parsed.MemoryKib, parsed.Iterations, parsed.Expected.Length)
            : Pbkdf2(password, parsed.Salt, parsed.Iterations, parsed.Expected.Length);
        try
        {
            fingerprint = Convert.ToBase64String(actual, 0, 8);
            if (!CryptographicOperations.FixedTimeEquals(actual, parsed.Expected))
            {
                return PasswordVerification.Failed;
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(actual);
        }

        var weaker = !parsed.Argon
            || parsed.MemoryKib < MemoryKib
            || parsed.Iterations < Iterations
            || parsed.Expected.Length != ArgonHashBytes;
        return weaker ? PasswordVerification.SuccessRehashNeeded : PasswordVerification.Success;
    }

    private static PasswordHashFormatError TryParse(string hash, out ParsedHash parsed)
    {
        parsed = default;
        if (hash.Length > MaxHashChars)
        {
            return PasswordHashFormatError.TooLong;
        }

        if (hash.StartsWith(ArgonPrefix, StringComparison.Ordinal))
        {
            return TryParseArgon(hash[ArgonPrefix.Length..], out parsed);
        }

        if (hash.StartsWith(PbkdfPrefix, StringComparison.Ordinal))
        {
            return TryParsePbkdf2(hash[PbkdfPrefix.Length..], out parsed);
        }

        return PasswordHashFormatError.UnknownAlgorithm;
    }

    private static PasswordHashFormatError TryParseArgon(string rest, out ParsedHash parsed)
    {
        parsed = default;
        var parts = rest.Split('$');
        if (parts.Length != 4)
        {
            return PasswordHashFormatError.MalformedFields;
        }

        if (parts[0] != "v=19")
        {
            return PasswordHashFormatError.UnsupportedVersion;
        }

        var parameters = parts[1].Split(',');
        if (parameters.Length != 3
            || !TryReadNumber(parameters[0], "m=", out var memory)
            || !TryReadNumber(parameters[1], "t=", out var passes)
            || !TryReadNumber(parameters[2], "p=", out var lanes))
        {
            return PasswordHashFormatError.MalformedParameters;
        }

        if (memory < MinimumArgonMemoryKib || memory > MaximumMemoryKib
            || passes < 1 || passes > MaximumArgonIterations
            || lanes < 1 || lanes > MaximumParallelism
            || memory < 8 * lanes)
        {
            return PasswordHashFormatError.ParametersOutOfRange;
        }

        if (lanes != 1)
        {
            return PasswordHashFormatError.UnsupportedParallelism;
        }

        if (!TryUnpadded(parts[2], SaltBytes, SaltBytes, out var salt))
        {
            return PasswordHashFormatError.BadSalt;
        }

        if (!TryUnpadded(parts[3], 16, 64, out var expected))
        {
            return PasswordHashFormatError.BadHash;
        }

        parsed = new ParsedHash(true, (int)memory, (int)passes, salt, expected);
        return PasswordHashFormatError.None;
    }

    private static PasswordHashFormatError TryParsePbkdf2(string rest, out ParsedHash parsed)
    {
        parsed = default;
        var parts = rest.Split('$');
        if (parts.Length != 3)
        {
            return PasswordHashFormatError.MalformedFields;
        }

        if (!TryReadNumber(parts[0], "", out var iterations))
        {
            return PasswordHashFormatError.MalformedParameters;
        }

        if (iterations < 1000 || iterations > MaximumIterations)
        {
            return PasswordHashFormatError.ParametersOutOfRange;
        }

        byte[] salt;
        byte[] expected;
        try
        {
            salt = Convert.FromBase64String(parts[1]);
        }
        catch (FormatException)
        {
            return PasswordHashFormatError.BadSalt;
        }

        try
        {
            expected = Convert.FromBase64String(parts[2]);
        }
        catch (FormatException)
        {
            return PasswordHashFormatError.BadHash;
        }

        if (salt.Length < 8)
        {
            return PasswordHashFormatError.BadSalt;
        }

        if (expected.Length is < 32 or > 64)
        {
            return PasswordHashFormatError.BadHash;
        }

        parsed = new ParsedHash(false, 0, (int)iterations, salt, expected);
        return PasswordHashFormatError.None;
    }

    /// <summary>Reads <c>&lt;name&gt;&lt;1–8 ASCII digits&gt;</c>, no sign, no leading zero (PHC's decimal rule).</summary>
    private static bool TryReadNumber(string field, string name, out long value)
    {
        value = 0;
        if (!field.StartsWith(name, StringComparison.Ordinal))
        {
            return false;
        }

        var digits = field.AsSpan(name.Length);
        if (digits.Length is 0 or > 8 || (digits.Length > 1 && digits[0] == '0'))
        {
            return false;
        }

        foreach (var c in digits)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    /// <summary>Decodes PHC's unpadded standard base64 of <paramref name="min"/>–<paramref name="max"/> bytes.</summary>
    private static bool TryUnpadded(string text, int min, int max, out byte[] bytes)
    {
        bytes = [];
        if (text.Length == 0 || text.Length > 88 || text.Contains('=', StringComparison.Ordinal) || text.Length % 4 == 1)
        {
            return false;
        }

        var padded = text.Length % 4 == 0 ? text : text + new string('=', 4 - (text.Length % 4));
        var buffer = new byte[66];
        if (!Convert.TryFromBase64String(padded, buffer, out var written) || written < min || written > max)
        {
            return false;
        }

        bytes = buffer[..written];

        // Only the canonical encoding (unused low bits zero) is accepted, so one hash has one string.
        return Unpadded(bytes) == text;
    }

    private static string Unpadded(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=');

    private static byte[] Argon2(string password, byte[] salt, int memoryKib, int iterations, int length)
    {
        var algorithm = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            DegreeOfParallelism = 1,
            MemorySize = memoryKib,
            NumberOfPasses = iterations,
        });
        var bytes = Encoding.UTF8.GetBytes(password);
        var output = new byte[length];
        try
        {
            algorithm.DeriveBytes(bytes, salt, output);
            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static byte[] Pbkdf2(string password, byte[] salt, int iterations, int length)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            return Rfc2898DeriveBytes.Pbkdf2(bytes, salt, iterations, HashAlgorithmName.SHA512, length);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private readonly record struct ParsedHash(bool Argon, int MemoryKib, int Iterations, byte[] Salt, byte[] Expected);
}
