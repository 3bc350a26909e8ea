using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Identity.Tests.Unit;

public sealed class PasswordHasherTests
{
    private static readonly PasswordHasher Hasher = new();

    /// <summary>A hash as written before Argon2id: PBKDF2-HMAC-SHA512 at 210,000 iterations.</summary>
    internal static string Pbkdf2Hash(string password, int iterations = PasswordHasher.MinimumIterations)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var derived = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA512, 64);
        return $"$pbkdf2-sha512$i={iterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(derived)}";
    }

    [Fact]
    public void Hash_IsArgon2idPhcString()
    {
        var hash = Hasher.Hash("correct horse");
        var parts = hash.Split('$');
        Assert.Equal(6, parts.Length);
        Assert.Equal("argon2id", parts[1]);
        Assert.Equal("v=19", parts[2]);
        Assert.Equal("m=19456,t=2,p=1", parts[3]);
        Assert.DoesNotContain('=', parts[4] + parts[5]);
        Assert.Equal(16, Convert.FromBase64String(parts[4] + "==").Length);
        Assert.Equal(32, Convert.FromBase64String(parts[5] + "=").Length);
        Assert.Equal(PasswordHashFormatError.None, PasswordHasher.Inspect(hash));
    }

    [Fact]
    public void Hash_MatchesLibsodiumIndependently()
    {
        // The same derivation through NSec directly, from the salt in the string: the format carries what the hash used.
        var hash = Hasher.Hash("pw");
        var parts = hash.Split('$');
        var salt = Convert.FromBase64String(parts[4] + "==");
        var argon = NSec.Cryptography.PasswordBasedKeyDerivationAlgorithm.Argon2id(new NSec.Cryptography.Argon2Parameters { DegreeOfParallelism = 1, MemorySize = 19456, NumberOfPasses = 2 });
        // The UTF-8 bytes overload: NSec's string overload derives a different value for the same text.
        var expected = argon.DeriveBytes("pw"u8, salt, 32);
        Assert.Equal(Convert.ToBase64String(expected).TrimEnd('='), parts[5]);
    }

    [Fact]
    public void Hash_SamePassword_DifferentSalt() => Assert.NotEqual(Hasher.Hash("a"), Hasher.Hash("a"));

    [Fact]
    public void Verify_Correct_Success() => Assert.Equal(PasswordVerification.Success, Hasher.Verify(Hasher.Hash("pässwörd"), "pässwörd"));

    [Fact]
    public void Verify_Wrong_Failed() => Assert.Equal(PasswordVerification.Failed, Hasher.Verify(Hasher.Hash("secret"), "Secret"));

    [Fact]
    public void Verify_OldPbkdf2_RehashNeeded()
    {
        var old = Pbkdf2Hash("pw");
        Assert.Equal(PasswordHashFormatError.None, PasswordHasher.Inspect(old));
        Assert.Equal(PasswordVerification.SuccessRehashNeeded, Hasher.Verify(old, "pw"));
        Assert.Equal(PasswordVerification.Failed, Hasher.Verify(old, "pW"));
    }

    [Fact]
    public void Verify_WeakerArgon_RehashNeeded()
    {
        Assert.Equal(PasswordVerification.SuccessRehashNeeded, Hasher.Verify(PasswordHasher.HashUngated("pw", 8192, 2), "pw"));
        Assert.Equal(PasswordVerification.SuccessRehashNeeded, Hasher.Verify(PasswordHasher.HashUngated("pw", 19456, 1), "pw"));
        Assert.Equal(PasswordVerification.Failed, Hasher.Verify(PasswordHasher.HashUngated("pw", 8192, 2), "px"));
    }

    [Fact]
    public void Verify_StrongerThanCurrent_Success()
    {
        var strong = new PasswordHasher(new PasswordHashingOptions { MemoryKib = 20480, Iterations = 3 }).Hash("pw");
        Assert.Equal(PasswordVerification.Success, Hasher.Verify(strong, "pw"));
    }

    [Fact]
    public async Task VerifyAsync_NoSlot_WaitEndsWithCancellation()
    {
        var hasher = new PasswordHasher(new PasswordHashingOptions { MaxConcurrentHashes = 1 });
        var hash = hasher.Hash("pw");

        // Hold the only slot: a waiting verification must give up when its request is cancelled, not queue forever.
        var gateField = typeof(PasswordHasher).GetField("gate", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        var gate = (SemaphoreSlim)gateField.GetValue(hasher)!;
        await gate.WaitAsync();
        Assert.Equal(1, hasher.HashesInProgress);
        using var cts = new CancellationTokenSource();
        var waiting = hasher.VerifyAsync(hash, "pw", cts.Token);
        Assert.False(waiting.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        gate.Release();
        Assert.Equal(PasswordVerification.Success, await hasher.VerifyAsync(hash, "pw"));
        Assert.Equal(0, hasher.HashesInProgress);
    }

    [Fact]
    public async Task ConcurrentVerifications_NeverExceedTheGate()
    {
        var hasher = new PasswordHasher(new PasswordHashingOptions { MaxConcurrentHashes = 2 });
        var hash = hasher.Hash("pw");
        var peak = 0;
        using var stop = new CancellationTokenSource();
        var watcher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var now = hasher.HashesInProgress;
                var seen = Volatile.Read(ref peak);
                if (now > seen)
                {
                    Interlocked.CompareExchange(ref peak, now, seen);
                }

                await Task.Yield();
            }
        });
        var all = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => hasher.VerifyAsync(hash, "pw"))));
        await stop.CancelAsync();
        await watcher;
        Assert.All(all, r => Assert.Equal(PasswordVerification.Success, r));
        Assert.InRange(peak, 0, 2);
    }

    public static TheoryData<string, PasswordHashFormatError> Tampered()
    {
        var good = new PasswordHasher().Hash("pw");
        var parts = good.Split('$');
        var salt = parts[4];
        var hash = parts[5];
        var flipped = Convert.FromBase64String(hash + "=");
        flipped[0] ^= 1;
        var old = Pbkdf2Hash("pw");
        var oldParts = old.Split('$');
        return new TheoryData<string, PasswordHashFormatError>
        {
            { "", PasswordHashFormatError.UnknownAlgorithm },
            { "plaintext", PasswordHashFormatError.UnknownAlgorithm },
            { good.Replace("argon2id", "argon2i", StringComparison.Ordinal), PasswordHashFormatError.UnknownAlgorithm },
            { good.Replace("v=19", "v=16", StringComparison.Ordinal), PasswordHashFormatError.UnsupportedVersion },
            { $"$argon2id$v=19$m=2097152,t=2,p=1${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=99999999,t=2,p=1${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=19456,t=11,p=1${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=19456,t=0,p=1${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=19456,t=2,p=5${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=4,t=2,p=1${salt}${hash}", PasswordHashFormatError.ParametersOutOfRange },
            { $"$argon2id$v=19$m=19456,t=2,p=4${salt}${hash}", PasswordHashFormatError.UnsupportedParallelism },
            { $"$argon2id$v=19$m=999999999,t=2,p=1${salt}${hash}", PasswordHashFormatError.MalformedParameters },
            { $"$argon2id$v=19$m=-1,t=2,p=1${salt}${hash}", PasswordHashFormatError.MalformedParameters },
            { $"$argon2id$v=19$m=019456,t=2,p=1${salt}${hash}", PasswordHashFormatError.MalformedParameters },
            { $"$argon2id$v=19$t=2,m=19456,p=1${salt}${hash}", PasswordHashFormatError.MalformedParameters },
            { $"$argon2id$v=19$m=19456,t=2${salt}${hash}", PasswordHashFormatError.MalformedParameters },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}", PasswordHashFormatError.MalformedFields },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}$x", PasswordHashFormatError.MalformedFields },
            { $"$argon2id$v=19$m=19456,t=2,p=1$!!!!${hash}", PasswordHashFormatError.BadSalt },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}==${hash}", PasswordHashFormatError.BadSalt },
            { $"$argon2id$v=19$m=19456,t=2,p=1$AAAA${hash}", PasswordHashFormatError.BadSalt },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}$", PasswordHashFormatError.BadHash },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}!", PasswordHashFormatError.BadHash },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}$AAAA", PasswordHashFormatError.BadHash },
            { $"$argon2id$v=19$m=19456,t=2,p=1${salt}${Convert.ToBase64String(flipped).TrimEnd('=')}=", PasswordHashFormatError.BadHash },
            { good + new string('A', 600), PasswordHashFormatError.TooLong },
            { old.Replace("i=210000", "i=abc", StringComparison.Ordinal), PasswordHashFormatError.MalformedParameters },
            { old.Replace("i=210000", "i=999999999", StringComparison.Ordinal), PasswordHashFormatError.MalformedParameters },
            { old.Replace("i=210000", "i=99999999", StringComparison.Ordinal), PasswordHashFormatError.ParametersOutOfRange },
            { $"$pbkdf2-sha512$i=210000${oldParts[3]}", PasswordHashFormatError.MalformedFields },
            { $"$pbkdf2-sha512$i=210000$!!!${oldParts[4]}", PasswordHashFormatError.BadSalt },
            { $"$pbkdf2-sha512$i=210000${oldParts[3]}$AAAA", PasswordHashFormatError.BadHash },
        };
    }

    [Theory]
    [MemberData(nameof(Tampered))]
    public void Verify_TamperedHash_TypedFailure(string hash, PasswordHashFormatError error)
    {
        Assert.Equal(error, PasswordHasher.Inspect(hash));
        Assert.Equal(PasswordVerification.Failed, Hasher.Verify(hash, "pw"));
    }

    [Fact]
    public void Verify_FlippedHashBit_Failed()
    {
        var parts = Hasher.Hash("pw").Split('$');
        var flipped = Convert.FromBase64String(parts[5] + "=");
        flipped[0] ^= 1;
        var tampered = $"$argon2id$v=19${parts[3]}${parts[4]}${Convert.ToBase64String(flipped).TrimEnd('=')}";
        Assert.Equal(PasswordHashFormatError.None, PasswordHasher.Inspect(tampered));
        Assert.Equal(PasswordVerification.Failed, Hasher.Verify(tampered, "pw"));
    }

    [Fact]
    public void Verify_HugeMemoryRow_RefusedWithoutWork()
    {
        // 1 GiB + 1 KiB would take seconds and a gigabyte if it ran; refused by the parser, it is instant and allocates ~nothing.
        var parts = Hasher.Hash("pw").Split('$');
        var huge = $"$argon2id$v=19$m={PasswordHasher.MaximumMemoryKib + 1},t=10,p=1${parts[4]}${parts[5]}";
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(PasswordVerification.Failed, Hasher.Verify(huge, "pw"));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 64 * 1024);
    }

    [Theory]
    [InlineData(8192, 2)]
    [InlineData(19456, 1)]
    [InlineData(2 * 1024 * 1024, 2)]
    [InlineData(19456, 11)]
    public void Options_BelowMinimumOrAboveCaps_Throw(int memoryKib, int iterations) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new PasswordHasher(new PasswordHashingOptions { MemoryKib = memoryKib, Iterations = iterations }));
}
