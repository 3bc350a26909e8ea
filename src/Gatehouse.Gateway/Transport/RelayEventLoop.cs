using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Gatehouse.Gateway.Transport;

/// <summary>
/// Waits for relayed sockets to become readable on a few dedicated threads (one Linux <c>epoll</c> each) and runs the
/// waiting relay's next step on that thread, instead of handing each wake-up to the thread pool.
/// </summary>
/// <remarks>
/// <para>Why: with .NET's sockets every wait for data ends on the socket engine's thread, which queues the continuation
/// to the thread pool: a work item and a worker woken per message relayed. On a desktop of small updates that hop was
/// most of the relay's CPU (docs/benchmarks.md, "Busy desktop"); <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c>
/// removes it, but for every socket of the process, so a sign-in page's password hash or a database continuation could
/// then stall every socket of its engine. This loop does it for the relay's waits alone.</para>
/// <para>What runs on it: a relay direction waits here with a zero-byte read (<see cref="ReadinessNetworkStream"/>, the
/// client leg's receive loop once its relay has begun); when data arrives the relay's step — read the TLS record(s),
/// decrypt, encrypt for the other leg, send — runs on the loop's thread until its next wait. Each step is bounded
/// (one batch of at most <see cref="Relay.RelayPump.BufferBytes"/>), reads that find only part of a record and sends
/// that find the peer's window full wait in .NET's socket engine as before, so no step blocks the loop.</para>
/// <para>Only on Linux (<see cref="IsSupported"/>); elsewhere, or with <c>Gatehouse:Gateway:RelayEventThreads</c> = 0,
/// the waits are .NET's zero-byte receives as before.</para>
/// </remarks>
public sealed class RelayEventLoop
{
    private static RelayEventLoop? s_current;
    private static int s_configured;

    private readonly EventThread[] _threads;
    private int _next;

    /// <summary>Starts <paramref name="threads"/> event threads (background threads: they end with the process).</summary>
    /// <param name="threads">How many (1–64).</param>
    /// <exception cref="PlatformNotSupportedException">Not Linux.</exception>
    public RelayEventLoop(int threads)
    {
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("the relay's event loop needs Linux epoll");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, 64);
        _threads = new EventThread[threads];
        for (var i = 0; i < threads; i++)
        {
            _threads[i] = new EventThread(i);
        }
    }

    /// <summary>True on Linux on the architectures whose <c>epoll_event</c> layout this knows (x64, arm64).</summary>
    public static bool IsSupported =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>The default number of event threads: one per processor, at most 8.</summary>
    public static int DefaultThreads => Math.Clamp(Environment.ProcessorCount, 1, 8);

    /// <summary>
    /// The loop the gateway's relays use: the one <see cref="Configure"/> set, or one of <see cref="DefaultThreads"/>
    /// threads made at first use; null when not <see cref="IsSupported"/> or configured off.
    /// </summary>
    public static RelayEventLoop? Current
    {
        get
        {
            if (Volatile.Read(ref s_configured) == 0)
            {
                Configure(-1);
            }

            return Volatile.Read(ref s_current);
        }
    }

    /// <summary>Threads started.</summary>
    public int ThreadCount => _threads.Length;

    /// <summary>
    /// Sets the process's loop once (the host does at start, from <c>Gatehouse:Gateway:RelayEventThreads</c>): a
    /// negative count means <see cref="DefaultThreads"/>, 0 turns it off. Later calls change nothing.
    /// </summary>
    /// <returns>The loop in use (null: off or not supported).</returns>
    public static RelayEventLoop? Configure(int threads)
    {
        if (Interlocked.CompareExchange(ref s_configured, 1, 0) == 0)
        {
            var count = threads < 0 ? DefaultThreads : Math.Min(threads, 64);
            Volatile.Write(ref s_current, count > 0 && IsSupported ? new RelayEventLoop(count) : null);
        }

        return Volatile.Read(ref s_current);
    }

    /// <summary>A readiness registration for <paramref name="socket"/> (its first wait adds it to one thread's epoll).</summary>
    public SocketReadiness Register(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var thread = _threads[(int)((uint)Interlocked.Increment(ref _next) % (uint)_threads.Length)];
        return new SocketReadiness(socket, thread);
    }

    /// <summary>One thread and its epoll; registrations are found by id (never by descriptor, which the kernel reuses).</summary>
    internal sealed class EventThread
    {
        private const int MaxEvents = 64;
        private readonly ConcurrentDictionary<ulong, SocketReadiness> _registrations = new();
        private long _nextId;

        public EventThread(int index)
        {
            Epoll = Native.EpollCreate();
            var thread = new Thread(Run) { IsBackground = true, Name = $"Relay events {index}" };
            thread.UnsafeStart();
        }

        public int Epoll { get; }

        /// <summary>Thread of the loop (tests check that a relay's step ran on it).</summary>
        public int ManagedThreadId { get; private set; }

        public ulong Add(SocketReadiness registration)
        {
            var id = (ulong)Interlocked.Increment(ref _nextId);
            _registrations[id] = registration;
            return id;
        }

        public void Remove(ulong id) => _registrations.TryRemove(id, out _);

        private void Run()
        {
            ManagedThreadId = Environment.CurrentManagedThreadId;
            var events = new byte[MaxEvents * Native.EventSize];
            while (true)
            {
                var count = Native.EpollWait(Epoll, events, MaxEvents);
                for (var i = 0; i < count; i++)
                {
                    var id = BitConverter.ToUInt64(events, (i * Native.EventSize) + Native.EventDataOffset);
                    if (_registrations.TryGetValue(id, out var registration))
                    {
                        try
                        {
                            // The waiter's continuation (the relay's next step) runs here, until it waits again.
                            registration.Signal();
                        }
                        catch (Exception)
                        {
                            // A relay's step ends in its own task (awaits capture their exceptions); should anything
                            // escape, the loop goes on for the other sessions.
                        }
                    }
                }
            }
        }
    }

    /// <summary>The few libc calls the loop needs.</summary>
    internal static class Native
    {
        private const int EpollCloexec = 0x80000;
        private const int EINTR = 4;

        public const int EpollCtlAdd = 1;
        public const int EpollCtlDel = 2;
        public const int EpollCtlMod = 3;

        // EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP | EPOLLONESHOT: readable, failed or closed, one event per arming.
        public const uint ReadableOnce = 0x001 | 0x008 | 0x010 | 0x2000 | 0x40000000;

        // struct epoll_event is packed on x86-64 (12 bytes: events, then data at 4) and naturally aligned elsewhere.
        public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
        public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

        public static int EpollCreate()
        {
            var fd = epoll_create1(EpollCloexec);
            return fd >= 0 ? fd : throw new SocketException(Marshal.GetLastPInvokeError());
        }

        public static int EpollWait(int epoll, byte[] events, int maxEvents)
        {
            while (true)
            {
                var count = epoll_wait(epoll, events, maxEvents, -1);
                if (count >= 0)
                {
                    return count;
                }

                var error = Marshal.GetLastPInvokeError();
                if (error != EINTR)
                {
                    throw new SocketException(error);
                }
            }
        }

        /// <summary>0, or the errno.</summary>
        public static int EpollCtl(int epoll, int operation, int fd, ulong id)
        {
            Span<byte> item = stackalloc byte[16];
            item.Clear();
            BitConverter.TryWriteBytes(item, ReadableOnce);
            BitConverter.TryWriteBytes(item[EventDataOffset..], id);
            return epoll_ctl(epoll, operation, fd, ref MemoryMarshal.GetReference(item)) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }

        /// <summary>True when a read of <paramref name="fd"/> would not wait (data, end of stream or an error is there).</summary>
        public static bool Readable(int fd)
        {
            // struct pollfd { int fd; short events; short revents; }; POLLIN: data or end of stream; POLLERR/POLLHUP always reported.
            var poll = new PollFd { Fd = fd, Events = 0x001 };
            return Poll(ref poll, 1, 0) > 0 && poll.Revents != 0;
        }

        [StructLayout(LayoutKind.Sequential)]
        public struct PollFd
        {
            public int Fd;
            public short Events;
            public short Revents;
        }

        // Plain DllImports of blittable signatures (no marshalling code is generated, no unsafe code needed).
        [DllImport("libc", SetLastError = true, EntryPoint = "poll")]
        private static extern int Poll(ref PollFd fds, nuint count, int timeout);

        [DllImport("libc", SetLastError = true)]
        private static extern int epoll_create1(int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int epoll_ctl(int epoll, int operation, int fd, ref byte item);

        [DllImport("libc", SetLastError = true)]
        private static extern int epoll_wait(int epoll, [Out] byte[] events, int maxEvents, int timeout);
    }
}

/// <summary>
/// One socket's waits for data on a <see cref="RelayEventLoop"/>: <see cref="WaitAsync"/> completes when the socket is
/// readable (data, the end of its stream, or an error), on the loop's thread unless it already was. One wait at a time.
/// Dispose it before the socket is closed (the descriptor leaves the epoll first, so a reused number is never watched).
/// </summary>
public sealed class SocketReadiness : IValueTaskSource, IValueTaskSource<int>, IDisposable
{
    private const int Idle = 0;
    private const int Waiting = 1;

    private readonly Socket _socket;
    private readonly RelayEventLoop.EventThread _thread;
    private readonly Lock _gate = new();
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = false };
    private CancellationTokenRegistration _cancellation;
    private CancellationToken _waitToken;
    private int _state;
    private ulong _id;
    private int _fd = -1;
    private bool _handleAdded;
    private bool _disposed;

    internal SocketReadiness(Socket socket, RelayEventLoop.EventThread thread)
    {
        _socket = socket;
        _thread = thread;
    }

    /// <summary>The managed thread id of the loop thread this socket's waits end on.</summary>
    public int LoopThreadId => _thread.ManagedThreadId;

    /// <summary>
    /// Completes when the socket is readable: at once when it already is, else on the loop's thread (where the caller's
    /// continuation then runs). Faults with <see cref="ObjectDisposedException"/> when disposed meanwhile.
    /// </summary>
    public ValueTask WaitAsync(CancellationToken cancellationToken) =>
        Begin(cancellationToken, out var version) switch
        {
            { } error => ValueTask.FromException(error),
            null when version < 0 => ValueTask.CompletedTask,
            _ => new ValueTask(this, (short)version),
        };

    /// <summary><see cref="WaitAsync"/> as a zero-byte read: completes with 0 (a stream's zero-byte read answers so).</summary>
    public ValueTask<int> WaitAsZeroByteReadAsync(CancellationToken cancellationToken) =>
        Begin(cancellationToken, out var version) switch
        {
            { } error => ValueTask.FromException<int>(error),
            null when version < 0 => ValueTask.FromResult(0),
            _ => new ValueTask<int>(this, (short)version),
        };

    /// <summary>Takes the socket out of the loop and ends a pending wait with <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_id != 0)
            {
                _ = RelayEventLoop.Native.EpollCtl(_thread.Epoll, RelayEventLoop.Native.EpollCtlDel, _fd, _id);
                _thread.Remove(_id);
            }

            if (_handleAdded)
            {
                _socket.SafeHandle.DangerousRelease();
                _handleAdded = false;
            }
        }

        Complete(new ObjectDisposedException(nameof(SocketReadiness)));
    }

    void IValueTaskSource.GetResult(short token)
    {
        _core.GetResult(token);
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        _core.GetResult(token);
        return 0;
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    /// <summary>Starts a wait: an error, or null with the version of the pending wait (-1: readable now, nothing pending).</summary>
    private Exception? Begin(CancellationToken cancellationToken, out int version)
    {
        version = -1;
        if (cancellationToken.IsCancellationRequested)
        {
            return new OperationCanceledException(cancellationToken);
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return new ObjectDisposedException(nameof(SocketReadiness));
            }

            if (!Attach(out var error))
            {
                return error;
            }

            if (RelayEventLoop.Native.Readable(_fd))
            {
                return null;
            }

            if (Volatile.Read(ref _state) != Idle)
            {
                return new InvalidOperationException("a wait for this socket is already pending");
            }

            // Reset before the state says Waiting: only a waiting registration is completed, so no event is lost to the reset.
            _core.Reset();
            version = _core.Version;
            Volatile.Write(ref _state, Waiting);
            // A registration left over from an earlier wait (one that ended while its registration was made) cancels
            // only a wait on the same token, which that cancellation ends anyway.
            _waitToken = cancellationToken;
            if (cancellationToken.CanBeCanceled)
            {
                _cancellation = cancellationToken.UnsafeRegister(static (state, token) => ((SocketReadiness)state!).Cancelled(token), this);
            }

            // Armed for one event; arming an already readable descriptor reports it at once, so nothing is missed
            // between the poll above and here.
            var armed = RelayEventLoop.Native.EpollCtl(_thread.Epoll, RelayEventLoop.Native.EpollCtlMod, _fd, _id);
            if (armed != 0)
            {
                Complete(new SocketException(armed));
            }

            return null;
        }
    }

    /// <summary>A wait's token fired.</summary>
    private void Cancelled(CancellationToken token)
    {
        if (token == _waitToken)
        {
            Complete(new OperationCanceledException(token));
        }
    }

    /// <summary>The loop saw the socket readable.</summary>
    internal void Signal() => Complete(null);

    /// <summary>Ends the pending wait, if any (once: the loop, a cancellation and a disposal may race).</summary>
    private void Complete(Exception? error)
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Waiting) != Waiting)
        {
            return;
        }

        _cancellation.Unregister();
        _cancellation = default;
        if (error is null)
        {
            _core.SetResult(true);
        }
        else
        {
            _core.SetException(error);
        }
    }

    /// <summary>Adds the socket to the loop's epoll at its first wait, holding its handle until disposal (under the lock).</summary>
    private bool Attach(out Exception error)
    {
        error = null!;
        if (_id != 0)
        {
            return true;
        }

        try
        {
            _socket.SafeHandle.DangerousAddRef(ref _handleAdded);
        }
        catch (ObjectDisposedException e)
        {
            error = e;
            return false;
        }

        _fd = (int)_socket.SafeHandle.DangerousGetHandle();
        var id = _thread.Add(this);
        // Added disarmed (no events until a wait arms it); EPOLLONESHOT with no event is not allowed, so add with the
        // one-shot mask and let the first event, if the socket is readable now, be ignored while no wait is pending.
        var added = RelayEventLoop.Native.EpollCtl(_thread.Epoll, RelayEventLoop.Native.EpollCtlAdd, _fd, id);
        if (added != 0)
        {
            _thread.Remove(id);
            _socket.SafeHandle.DangerousRelease();
            _handleAdded = false;
            error = new SocketException(added);
            return false;
        }

        _id = id;
        return true;
    }
}
