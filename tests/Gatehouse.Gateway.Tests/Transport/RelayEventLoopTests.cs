using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Gateway.Relay;
using Gatehouse.Gateway.Transport;

namespace Gatehouse.Gateway.Tests.Transport;

/// <summary>The relay event loop (Linux epoll), on loopback socket pairs.</summary>
public sealed class RelayEventLoopTests
{
    // One loop for the class (its threads live as long as the process, as the gateway's does).
    private static readonly RelayEventLoop Loop = new(2);

    [Fact]
    public async Task Wait_EndsWhenDataArrives_AndItsContinuationRunsOnTheLoopThread()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        using var readiness = Loop.Register(near);
        var wait = readiness.WaitAsync(CancellationToken.None);
        Assert.False(wait.IsCompleted);
        var ranOn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var continued = ContinueAsync(wait, ranOn);

        // Act
        await far.SendAsync("x"u8.ToArray());

        // Assert: the continuation ran inline on the loop's thread, not on a thread-pool worker.
        Assert.Equal(readiness.LoopThreadId, await ranOn.Task);
        await continued;

        static async Task ContinueAsync(ValueTask wait, TaskCompletionSource<int> ranOn)
        {
            await wait.ConfigureAwait(false);
            ranOn.SetResult(Environment.CurrentManagedThreadId);
        }
    }

    [Fact]
    public async Task Wait_OnAReadableSocket_CompletesAtOnce_AndTheDataIsStillThere()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        using var readiness = Loop.Register(near);
        await far.SendAsync("abc"u8.ToArray());
        await Until.TrueAsync(() => near.Available == 3, "the bytes reached the socket");

        // Act
        var wait = readiness.WaitAsync(CancellationToken.None);

        // Assert
        Assert.True(wait.IsCompletedSuccessfully);
        var buffer = new byte[8];
        Assert.Equal(3, near.Receive(buffer));
    }

    [Fact]
    public async Task Wait_EndsWhenThePeerCloses()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var readiness = Loop.Register(near);
        var wait = readiness.WaitAsync(CancellationToken.None).AsTask();

        // Act
        far.Dispose();

        // Assert: readable (the end of the stream), and a read says so.
        await wait;
        Assert.Equal(0, await near.ReceiveAsync(new byte[4]));
    }

    [Fact]
    public async Task Wait_IsCancelled_ByItsToken_AndTheNextWaitWorks()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        using var readiness = Loop.Register(near);
        using var cancel = new CancellationTokenSource();
        var wait = readiness.WaitAsync(cancel.Token).AsTask();

        // Act
        await cancel.CancelAsync();

        // Assert
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
        var next = readiness.WaitAsync(CancellationToken.None).AsTask();
        await far.SendAsync("y"u8.ToArray());
        await next;
    }

    [Fact]
    public async Task Dispose_EndsAPendingWait_AndLaterWaitsFail()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        var readiness = Loop.Register(near);
        var wait = readiness.WaitAsync(CancellationToken.None).AsTask();

        // Act
        readiness.Dispose();

        // Assert
        await Assert.ThrowsAsync<ObjectDisposedException>(() => wait);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => readiness.WaitAsync(CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task ASecondWaitWhileOneIsPending_IsRefused()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var _ = near;
        using var __ = far;
        using var readiness = Loop.Register(near);
        var first = readiness.WaitAsync(CancellationToken.None).AsTask();

        // Act + Assert
        await Assert.ThrowsAsync<InvalidOperationException>(() => readiness.WaitAsync(CancellationToken.None).AsTask());
        await far.SendAsync("z"u8.ToArray());
        await first;
    }

    [Fact]
    public async Task ManySockets_EachWaitEndsForItsOwnData_AcrossRepeatedWaits()
    {
        // Arrange: 40 pairs over the loop's two threads, 25 rounds each of wait, send, receive.
        var pairs = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => PairAsync()));
        try
        {
            // Act
            await Task.WhenAll(pairs.Select(async pair =>
            {
                using var readiness = Loop.Register(pair.Near);
                var buffer = new byte[16];
                for (var round = 0; round < 25; round++)
                {
                    var wait = readiness.WaitAsync(CancellationToken.None);
                    await pair.Far.SendAsync(new[] { (byte)round });
                    await wait;
                    Assert.Equal(1, await pair.Near.ReceiveAsync(buffer));
                    Assert.Equal(round, buffer[0]);
                }
            }));
        }
        finally
        {
            foreach (var (near, far) in pairs)
            {
                near.Dispose();
                far.Dispose();
            }
        }
    }

    [Fact]
    public async Task RelayPump_OverReadinessStreams_CopiesEveryByte_InTlsBothWays()
    {
        // Arrange: a TLS host behind a ReadinessNetworkStream, the pump copying its records to a plain sink.
        var (near, far) = await PairAsync();
        using var certificate = SelfSigned();
        var host = new SslStream(new NetworkStream(far, ownsSocket: true));
        var hostLeg = new ReadinessNetworkStream(near, Loop);
        var gateway = new SslStream(hostLeg);
        await Task.WhenAll(
            host.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate, EnabledSslProtocols = SslProtocols.Tls13 }),
            gateway.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "relay-loop.test", RemoteCertificateValidationCallback = (_, presented, _, _) => presented?.GetCertHashString() == certificate.GetCertHashString() }));
        var sink = new MemoryStream();
        var payload = new byte[300_000];
        new Random(7).NextBytes(payload);

        // Act: the host writes in pieces of many sizes, then closes.
        var pump = RelayPump.CopyAsync(gateway, sink, null, CancellationToken.None);
        for (var offset = 0; offset < payload.Length;)
        {
            var count = Math.Min(payload.Length - offset, 1 + (offset % 20_000));
            await host.WriteAsync(payload.AsMemory(offset, count));
            offset += count;
        }

        await host.ShutdownAsync();
        host.Dispose();
        var copied = await pump;

        // Assert
        Assert.Equal(payload.Length, copied);
        Assert.Equal(payload, sink.ToArray());
        Assert.NotNull(hostLeg.Readiness);
        gateway.Dispose();
    }

    [Fact]
    public async Task ReadinessStream_BeforeItsFirstZeroByteRead_ReadsWithoutTheLoop_AndAfterIt_AReadThatMustWaitEndsOnTheLoop()
    {
        // Arrange
        var (near, far) = await PairAsync();
        using var __ = far;
        await using var stream = new ReadinessNetworkStream(near, Loop);
        var buffer = new byte[8];

        // Act + Assert: a sign-in phase's read (no zero-byte read yet) registers nothing with the loop.
        var early = stream.ReadAsync(buffer).AsTask();
        await far.SendAsync("a"u8.ToArray());
        Assert.Equal(1, await early);
        Assert.Null(stream.Readiness);

        // The relay's zero-byte read, then a read that has to wait: its continuation runs on the loop's thread.
        var park = stream.ReadAsync(Memory<byte>.Empty);
        await far.SendAsync("b"u8.ToArray());
        Assert.Equal(0, await park);
        Assert.Equal(1, await stream.ReadAsync(buffer));
        var ranOn = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = ReadThenNoteThreadAsync(stream, buffer, ranOn);
        await far.SendAsync("c"u8.ToArray());
        Assert.Equal(stream.Readiness!.LoopThreadId, await ranOn.Task);
        Assert.Equal(1, await reading);

        static async Task<int> ReadThenNoteThreadAsync(Stream stream, byte[] buffer, TaskCompletionSource<int> ranOn)
        {
            var read = await stream.ReadAsync(buffer).ConfigureAwait(false);
            ranOn.SetResult(Environment.CurrentManagedThreadId);
            return read;
        }
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=relay-loop.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }

    private static async Task<(Socket Near, Socket Far)> PairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var near = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await near.ConnectAsync(listener.LocalEndPoint!);
        return (near, await accept);
    }
}
