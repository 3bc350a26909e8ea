using System.Buffers;
using System.Security.Cryptography;
using Gatehouse.Gateway.Hold.Painting;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol.Front;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Hold;

/// <summary>What the user did on the hold screen.</summary>
public abstract record HoldInput;

/// <summary>A digit key (top row or keypad), down.</summary>
/// <param name="Digit">0–9.</param>
public sealed record DigitTyped(int Digit) : HoldInput;

/// <summary>Backspace, down.</summary>
public sealed record BackspaceTyped : HoldInput;

/// <summary>Enter (main or keypad), down.</summary>
public sealed record EnterTyped : HoldInput;

/// <summary>An arrow key (up or down), down.</summary>
/// <param name="Down">True for the down arrow.</param>
public sealed record ArrowTyped(bool Down) : HoldInput;

/// <summary>
/// One client held by the gateway's own RDP front: it runs the server side of the connection sequence over the client's
/// TLS stream (<see cref="HoldFront"/>, sans-IO), paints with the <see cref="HoldScreenPainter"/> (dirty tiles only),
/// turns keyboard input into <see cref="HoldInput"/>, answers Refresh Rect from its framebuffer, pauses while output is
/// suppressed, and ends with a refusal (Set Error Info + ultimatum) or a redirection. Input before activation is dropped
/// by the front, never fatal; the virtual channels are never spoken on.
/// </summary>
public sealed class HoldSession : IDisposable
{
    /// <summary>Largest client PDU during the hold (input, finalization; the Connect Initial is about 1 KiB).</summary>
    public const int MaxFrameBytes = 16 * 1024;

    private readonly HoldFront _front;
    private readonly Stream _client;
    private readonly RdpFrameReader _reader;
    private readonly HoldScreenPainter _painter;
    private readonly SemaphoreSlim _output = new(1, 1);
    private Framebuffer? _screen;
    private TileTracker? _tiles;
    private bool _suppressed;
    private Task<HoldInput?>? _pending;
    private byte[]? _clientInfo;

    private HoldSession(HoldFront front, Stream client, HoldScreenPainter painter)
    {
        _front = front;
        _client = client;
        _painter = painter;
        _reader = new RdpFrameReader(client, MaxFrameBytes);
    }

    /// <summary>The user name the client's Client Info PDU named (the hold screen greets by it when nothing better is known).</summary>
    public HoldClientInfo? ClientInfo => _front.ClientInfo;

    /// <summary>
    /// The client's Client Info PDU as it came (it may hold a password), when <see cref="StartAsync"/> was asked to keep
    /// it; wiped by <see cref="Dispose"/>.
    /// </summary>
    public byte[]? ClientInfoFrame => _clientInfo;

    /// <summary>True when the client's cluster data says it follows a server redirection (the handover needs it).</summary>
    public bool SupportsRedirection => _front.ClientSupportsRedirection;

    /// <summary>How long the gateway waits, after the hold's last PDU, for the client to close first.</summary>
    public static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After the last PDU (a redirection, or Set Error Info and the ultimatum): reads and drops what the client still
    /// sends until it closes, at most <paramref name="wait"/>. A client that is still writing (input, a frame
    /// acknowledgement) when the gateway closes first sees a broken pipe before it has read the end, and reports that
    /// instead of following the redirection or showing the reason.
    /// </summary>
    public async Task WaitForCloseAsync(TimeSpan wait, TimeProvider time, CancellationToken clientClosed)
    {
        ArgumentNullException.ThrowIfNull(time);
        using var deadline = new CancellationTokenSource(wait, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, clientClosed);
        try
        {
            if (Interlocked.Exchange(ref _pending, null) is { } pending)
            {
                var stop = Task.Delay(Timeout.InfiniteTimeSpan, both.Token);
                if (await Task.WhenAny(pending, stop).ConfigureAwait(false) == stop || await pending.ConfigureAwait(false) is null)
                {
                    return;
                }
            }

            while (await ReadFrameAsync(both.Token).ConfigureAwait(false) is { } frame)
            {
                CryptographicOperations.ZeroMemory(frame);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The wait is over, or the client is gone: either way the connection closes now.
        }
    }

    /// <summary>Wipes the kept Client Info PDU.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _clientInfo, null) is { } kept)
        {
            CryptographicOperations.ZeroMemory(kept);
        }
    }

    /// <summary>
    /// Runs the connection sequence until the front is active (within <paramref name="cancellationToken"/>'s deadline);
    /// null, with the reason, when the client left or broke the sequence.
    /// </summary>
    public static async Task<(HoldSession? Session, string? Problem)> StartAsync(GatewayConnection connection, Stream client, HoldScreenPainter painter, int maxDesktopPixels, CancellationToken cancellationToken, bool keepClientInfo = false)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var shareId = 0x0001_0000u | (uint)RandomNumberGenerator.GetInt32(0x03EA, 0xFFFF);
        var front = new HoldFront(new HoldFrontOptions
        {
            ClientRequestedProtocols = connection.ConnectionRequest?.RequestedProtocols ?? SecurityProtocol.Ssl,
            ShareId = shareId,
        });
        var session = new HoldSession(front, client, painter);
        while (front.State != HoldFrontState.Active)
        {
            var frame = await session.ReadFrameAsync(cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return (null, "the client left during the hold screen's connection sequence");
            }

            // A TLS sign-in on the front proves the password in the Client Info PDU: that frame is kept (a copy, wiped
            // by Dispose); every frame read here is wiped once handled.
            var maybeClientInfo = keepClientInfo && front.State is HoldFrontState.JoiningChannels or HoldFrontState.WaitingForClientInfo ? (byte[])frame.Clone() : null;
            var result = front.Receive(frame);
            CryptographicOperations.ZeroMemory(frame);
            if (maybeClientInfo is not null)
            {
                if (result.Events.Any(e => e is ClientInfoReceived) && session._clientInfo is null)
                {
                    session._clientInfo = maybeClientInfo;
                }
                else
                {
                    CryptographicOperations.ZeroMemory(maybeClientInfo);
                }
            }

            await session.SendAsync(result.Output, cancellationToken).ConfigureAwait(false);
            if (result.Error != HoldFrontError.None)
            {
                return (null, $"the hold screen's connection sequence failed: {result.Error}: {result.ErrorText}");
            }

            foreach (var e in result.Events)
            {
                if (e is Activated activated)
                {
                    if ((long)activated.DesktopWidth * activated.DesktopHeight > maxDesktopPixels)
                    {
                        await session.RefuseAsync(ErrorInfoCode.ServerDeniedConnection, cancellationToken).ConfigureAwait(false);
                        return (null, $"the client's {activated.DesktopWidth}×{activated.DesktopHeight} desktop is larger than the hold screen paints (Gatehouse:Gateway:HoldScreen:MaxDesktopPixels)");
                    }

                    if (!Framebuffer.TryCreate(activated.DesktopWidth, activated.DesktopHeight, out var screen, out var error))
                    {
                        return (null, $"the client's desktop cannot be painted: {error}");
                    }

                    session._screen = screen;
                    session._tiles = new TileTracker(screen!.Width, screen.Height);
                }
            }
        }

        return (session, null);
    }

    /// <summary>Paints the one-time code prompt.</summary>
    public Task ShowAsync(CodePromptView view, CancellationToken cancellationToken) => PaintAsync(s => _painter.Paint(s, view), cancellationToken);

    /// <summary>Paints the host picker.</summary>
    public Task ShowAsync(HostPickerView view, CancellationToken cancellationToken) => PaintAsync(s => _painter.Paint(s, view), cancellationToken);

    /// <summary>Paints a refusal.</summary>
    public Task ShowAsync(RefusalView view, CancellationToken cancellationToken) => PaintAsync(s => _painter.Paint(s, view), cancellationToken);

    /// <summary>Paints the QR sign-in.</summary>
    public Task ShowAsync(QrSignInView view, CancellationToken cancellationToken) => PaintAsync(s => _painter.Paint(s, view), cancellationToken);

    /// <summary>
    /// The next thing the user did (digits, Backspace, Enter); null when the client left or asked to shut down. Refresh
    /// and suppress requests are answered on the way. A read started by <see cref="InputPending"/> is taken over.
    /// </summary>
    public Task<HoldInput?> NextInputAsync(CancellationToken cancellationToken)
    {
        var pending = _pending;
        _pending = null;
        return pending ?? ReadInputAsync(cancellationToken);
    }

    /// <summary>
    /// The read of the next input, started if none is under way: for waiting on the user and something else at once (the
    /// QR sign-in's polling). The task stays pending until input arrives; <see cref="NextInputAsync"/> takes it over, so
    /// no input is lost and no read is cancelled mid-frame. Painting meanwhile is safe: writes are serialised.
    /// </summary>
    public Task<HoldInput?> InputPending(CancellationToken cancellationToken) => _pending ??= ReadInputAsync(cancellationToken);

    /// <summary>Forgets a completed pending read (its input was handled).</summary>
    public void ConsumePending()
    {
        if (_pending is { IsCompleted: true })
        {
            _pending = null;
        }
    }

    private async Task<HoldInput?> ReadInputAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var frame = await ReadFrameAsync(cancellationToken).ConfigureAwait(false);
            if (frame is null)
            {
                return null;
            }

            var result = _front.Receive(frame);
            await SendLockedAsync(result.Output, cancellationToken).ConfigureAwait(false);
            if (result.Error != HoldFrontError.None)
            {
                return null;
            }

            HoldInput? input = null;
            foreach (var e in result.Events)
            {
                switch (e)
                {
                    case ClientShutdownRequested:
                        return null;
                    case RefreshRequested refresh:
                        await LockedAsync(() => RefreshAsync(refresh.Areas, cancellationToken), cancellationToken).ConfigureAwait(false);
                        break;
                    case SuppressOutput suppress:
                        await LockedAsync(
                            async () =>
                            {
                                _suppressed = !suppress.AllowDisplayUpdates;
                                if (!_suppressed)
                                {
                                    _tiles?.Invalidate();
                                    await FlushTilesAsync(cancellationToken).ConfigureAwait(false);
                                }
                            },
                            cancellationToken).ConfigureAwait(false);
                        break;
                    case KeyPressed { Released: false } key:
                        input ??= Key(key.Scancode, key.Extended);
                        break;
                    case UnicodeKey { Released: false } unicode when unicode.CodeUnit is >= '0' and <= '9':
                        input ??= new DigitTyped(unicode.CodeUnit - '0');
                        break;
                    case UnicodeKey { Released: false, CodeUnit: '\r' }:
                        input ??= new EnterTyped();
                        break;
                    case UnicodeKey { Released: false, CodeUnit: '\b' }:
                        input ??= new BackspaceTyped();
                        break;
                }
            }

            if (input is not null)
            {
                return input;
            }
        }
    }

    /// <summary>Ends the hold with a reason the client shows (Set Error Info + Disconnect Provider Ultimatum).</summary>
    public async Task RefuseAsync(ErrorInfoCode errorInfo, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>(64);
        await LockedAsync(
            () =>
            {
                _front.WriteRefusal(output, errorInfo);
                return SendAsync(output.WrittenMemory, cancellationToken);
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Hands the client back to the gateway with a one-time routing token (Server Redirection, LoadBalanceInfo), and,
    /// for a client that proved nothing itself (a TLS sign-in on the front), the user name and the handover's secret
    /// (LB_USERNAME, LB_PASSWORD), which the reconnect sends back inside TLS.
    /// </summary>
    public async Task RedirectAsync(string routingToken, CancellationToken cancellationToken, string? userName = null, string? secret = null)
    {
        ArgumentNullException.ThrowIfNull(routingToken);
        var output = new ArrayBufferWriter<byte>(512);
        await LockedAsync(
            () =>
            {
                _front.WriteRedirection(output, System.Text.Encoding.ASCII.GetBytes(routingToken), userName, secret);
                return SendAsync(output.WrittenMemory, cancellationToken);
            },
            cancellationToken).ConfigureAwait(false);
        CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsMemory(output.WrittenMemory).Span);
    }

    /// <summary>
    /// Set-1 scancodes: the top row 0x02–0x0B (1–9, 0) and the keypad (7 8 9 / 4 5 6 / 1 2 3 / 0, without E0, which would
    /// make them navigation keys), Backspace 0x0E, Enter 0x1C (E0 0x1C on the keypad).
    /// </summary>
    internal static HoldInput? Key(byte scancode, bool extended) => (scancode, extended) switch
    {
        ( >= 0x02 and <= 0x0A, false) => new DigitTyped(scancode - 0x01),
        (0x0B, false) => new DigitTyped(0),
        (0x47, false) => new DigitTyped(7),
        (0x48, false) => new DigitTyped(8),
        (0x49, false) => new DigitTyped(9),
        (0x4B, false) => new DigitTyped(4),
        (0x4C, false) => new DigitTyped(5),
        (0x4D, false) => new DigitTyped(6),
        (0x4F, false) => new DigitTyped(1),
        (0x50, false) => new DigitTyped(2),
        (0x51, false) => new DigitTyped(3),
        (0x52, false) => new DigitTyped(0),
        (0x0E, false) => new BackspaceTyped(),
        (0x1C, _) => new EnterTyped(),
        (0x48, true) => new ArrowTyped(Down: false),
        (0x50, true) => new ArrowTyped(Down: true),
        _ => null,
    };

    private Task PaintAsync(Action<Framebuffer> paint, CancellationToken cancellationToken) =>
        LockedAsync(
            () =>
            {
                paint(_screen ?? throw new InvalidOperationException("the hold screen is not active"));
                return FlushTilesAsync(cancellationToken);
            },
            cancellationToken);

    /// <summary>Everything that writes to the client (or touches the framebuffer) runs one at a time: a pending input read answers refresh requests while the hold paints.</summary>
    private async Task LockedAsync(Func<Task> write, CancellationToken cancellationToken)
    {
        await _output.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await write().ConfigureAwait(false);
        }
        finally
        {
            _output.Release();
        }
    }

    private Task SendLockedAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        bytes.IsEmpty ? Task.CompletedTask : LockedAsync(() => SendAsync(bytes, cancellationToken), cancellationToken);

    private async Task FlushTilesAsync(CancellationToken cancellationToken)
    {
        if (_suppressed || _screen is null || _tiles is null)
        {
            return;
        }

        await SendTilesAsync(_tiles.CollectChanges(_screen), cancellationToken).ConfigureAwait(false);
    }

    private async Task RefreshAsync(IReadOnlyList<HoldRectangle> areas, CancellationToken cancellationToken)
    {
        if (_screen is null || _tiles is null || _suppressed)
        {
            return;
        }

        foreach (var area in areas)
        {
            var left = Math.Clamp(area.Left, 0, _screen.Width - 1);
            var top = Math.Clamp(area.Top, 0, _screen.Height - 1);
            var right = Math.Clamp(area.Right, left, _screen.Width - 1);
            var bottom = Math.Clamp(area.Bottom, top, _screen.Height - 1);
            await SendTilesAsync(_tiles.TilesIn(_screen, new PixelRect(left, top, right - left + 1, bottom - top + 1)), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendTilesAsync(IReadOnlyList<DirtyTile> tiles, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>(32 * 1024);
        foreach (var tile in tiles)
        {
            _front.WriteBitmap(output, tile.X, tile.Y, tile.DestinationWidth, tile.Height, tile.Pixels, tile.Width);
            if (output.WrittenCount > 256 * 1024)
            {
                await SendAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
                output.ResetWrittenCount();
            }
        }

        await SendAsync(output.WrittenMemory, cancellationToken).ConfigureAwait(false);
    }

    private async Task<byte[]?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        try
        {
            return (await _reader.ReadAsync(cancellationToken).ConfigureAwait(false))?.Bytes;
        }
        catch (RdpFrameException)
        {
            return null;
        }
    }

    private async Task SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        await _client.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await _client.FlushAsync(cancellationToken).ConfigureAwait(false);
    }
}
