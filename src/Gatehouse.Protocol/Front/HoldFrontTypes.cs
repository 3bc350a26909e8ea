using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Protocol.Front;

/// <summary>Where the hold front is in the server side of the connection sequence ([MS-RDPBCGR] 1.3.1.1).</summary>
public enum HoldFrontState
{
    /// <summary>Waiting for the client's MCS Connect Initial (2.2.1.3).</summary>
    WaitingForConnectInitial,

    /// <summary>Waiting for the MCS Erect Domain Request (2.2.1.5).</summary>
    WaitingForErectDomain,

    /// <summary>Waiting for the MCS Attach User Request (2.2.1.6).</summary>
    WaitingForAttachUser,

    /// <summary>Answering MCS Channel Join Requests (2.2.1.8), or the Client Info PDU when channel joins are skipped.</summary>
    JoiningChannels,

    /// <summary>Waiting for the Client Info PDU (2.2.1.11).</summary>
    WaitingForClientInfo,

    /// <summary>Demand Active sent; waiting for the Confirm Active PDU (2.2.1.13.2).</summary>
    WaitingForConfirmActive,

    /// <summary>Reading the client's Synchronize, Control and Font List PDUs (2.2.1.14-18).</summary>
    Finalizing,

    /// <summary>The connection sequence is done: the front paints and reads input.</summary>
    Active,

    /// <summary>A refusal or a redirection was written, or a failure ended the sequence; nothing more is read.</summary>
    Closed,
}

/// <summary>Why <see cref="HoldFront.Receive"/> failed. Every failure closes the front.</summary>
public enum HoldFrontError
{
    /// <summary>No failure.</summary>
    None,

    /// <summary>A client PDU is malformed (the result's <see cref="HoldFrontResult.PduError"/> says where).</summary>
    MalformedPdu,

    /// <summary>A well-formed PDU arrived in a phase where it is not allowed.</summary>
    UnexpectedPdu,

    /// <summary>The client asked for something the front does not do (standard RDP security, no fast-path output, no channels it can join).</summary>
    UnsupportedClient,

    /// <summary>The client named a channel, user or share that the front did not give it.</summary>
    WrongIdentifier,

    /// <summary>The client disconnected (MCS Disconnect Provider Ultimatum).</summary>
    ClientDisconnected,

    /// <summary>The front is closed; nothing more is read.</summary>
    Closed,
}

/// <summary>Mouse buttons of a pointer event.</summary>
public enum MouseButton
{
    /// <summary>No button changed (a move or a wheel turn).</summary>
    None,

    /// <summary>PTRFLAGS_BUTTON1.</summary>
    Left,

    /// <summary>PTRFLAGS_BUTTON2.</summary>
    Right,

    /// <summary>PTRFLAGS_BUTTON3.</summary>
    Middle,

    /// <summary>PTRXFLAGS_BUTTON1.</summary>
    X1,

    /// <summary>PTRXFLAGS_BUTTON2.</summary>
    X2,
}

/// <summary>Something the caller should know about, produced by <see cref="HoldFront.Receive"/>.</summary>
public abstract record HoldFrontEvent;

/// <summary>The Client Info PDU arrived. The password itself is not kept, only whether there was one.</summary>
/// <param name="Info">What the client said about its user.</param>
public sealed record ClientInfoReceived(HoldClientInfo Info) : HoldFrontEvent;

/// <summary>The connection sequence finished: the front is Active and may paint.</summary>
/// <param name="DesktopWidth">The desktop width the client confirmed.</param>
/// <param name="DesktopHeight">The desktop height the client confirmed.</param>
/// <param name="BitsPerPixel">The colour depth bitmaps are written in (32 or 16).</param>
public sealed record Activated(int DesktopWidth, int DesktopHeight, int BitsPerPixel) : HoldFrontEvent;

/// <summary>A keyboard scancode event (fast-path TS_FP_KEYBOARD_EVENT or slow-path TS_KEYBOARD_EVENT).</summary>
/// <param name="Scancode">The set-1 scancode (low byte).</param>
/// <param name="Extended">KBDFLAGS_EXTENDED: the E0 prefix.</param>
/// <param name="Released">KBDFLAGS_RELEASE: the key went up.</param>
public sealed record KeyPressed(byte Scancode, bool Extended, bool Released) : HoldFrontEvent;

/// <summary>A Unicode keyboard event (TS_FP_UNICODE_KEYBOARD_EVENT / TS_UNICODE_KEYBOARD_EVENT).</summary>
/// <param name="CodeUnit">The UTF-16 code unit.</param>
/// <param name="Released">KBDFLAGS_RELEASE.</param>
public sealed record UnicodeKey(char CodeUnit, bool Released) : HoldFrontEvent;

/// <summary>A pointer event (mouse or extended mouse).</summary>
/// <param name="X">xPos.</param>
/// <param name="Y">yPos.</param>
/// <param name="Button">The button that changed, or None.</param>
/// <param name="ButtonDown">True when <paramref name="Button"/> went down.</param>
/// <param name="WheelDelta">The signed wheel rotation (0 when the wheel did not turn).</param>
/// <param name="HorizontalWheel">True when the rotation is of the horizontal wheel.</param>
public sealed record Mouse(int X, int Y, MouseButton Button, bool ButtonDown, int WheelDelta, bool HorizontalWheel) : HoldFrontEvent;

/// <summary>A synchronize event: the toggle keys' state (TS_SYNC_SCROLL_LOCK 1, NUM_LOCK 2, CAPS_LOCK 4, KANA_LOCK 8).</summary>
/// <param name="ToggleFlags">The toggle flags.</param>
public sealed record KeyboardSynchronized(uint ToggleFlags) : HoldFrontEvent;

/// <summary>[MS-RDPBCGR] 2.2.11.2 Refresh Rect PDU: repaint these areas (inclusive rectangles).</summary>
/// <param name="Areas">The areas to repaint.</param>
public sealed record RefreshRequested(IReadOnlyList<HoldRectangle> Areas) : HoldFrontEvent;

/// <summary>[MS-RDPBCGR] 2.2.11.3 Suppress Output PDU: stop (false) or resume (true) display updates.</summary>
/// <param name="AllowDisplayUpdates">True to resume painting.</param>
/// <param name="Area">The desktop area when resuming.</param>
public sealed record SuppressOutput(bool AllowDisplayUpdates, HoldRectangle? Area) : HoldFrontEvent;

/// <summary>[MS-RDPBCGR] 2.2.2.2 Shutdown Request PDU: the user closed the window.</summary>
public sealed record ClientShutdownRequested : HoldFrontEvent;

/// <summary>An inclusive rectangle (TS_RECTANGLE16).</summary>
/// <param name="Left">left.</param>
/// <param name="Top">top.</param>
/// <param name="Right">right (inclusive).</param>
/// <param name="Bottom">bottom (inclusive).</param>
public readonly record struct HoldRectangle(int Left, int Top, int Right, int Bottom);

/// <summary>The user data of the Client Info PDU that the gateway may use.</summary>
/// <param name="UserName">UserName.</param>
/// <param name="Domain">Domain.</param>
/// <param name="PasswordGiven">True when the packet carried a non-empty password (the bytes are wiped).</param>
/// <param name="Flags">The TS_INFO_PACKET flags.</param>
/// <param name="ClientAddress">clientAddress of the extended info, or empty.</param>
public sealed record HoldClientInfo(string UserName, string Domain, bool PasswordGiven, ClientInfoFlags Flags, string ClientAddress);

/// <summary>What the hold front is given before it starts: things decided outside the MCS phase.</summary>
public sealed class HoldFrontOptions
{
    /// <summary>The requestedProtocols of the client's X.224 Connection Request, echoed in SC_CORE.</summary>
    public SecurityProtocol ClientRequestedProtocols { get; init; }

    /// <summary>The shareId of the Demand Active PDU (a random value, chosen by the caller).</summary>
    public uint ShareId { get; init; } = 0x0001_03EA;

    /// <summary>
    /// Largest total size of a fragmented update the front offers to accept in its own Multifragment Update
    /// capability (the client only sends small PDUs to the hold screen).
    /// </summary>
    public uint ServerMaxRequestSize { get; init; } = 0x0003_0000;

    /// <summary>Send PTR_DEFAULT right after the Font Map (true unless the painter sets a pointer itself).</summary>
    public bool SendDefaultPointer { get; init; } = true;

    /// <summary>
    /// Send 32 bpp tiles RDP 6.0 planar compressed when that is smaller ([MS-RDPEGDI] 3.1.9). 16 bpp tiles are always
    /// sent uncompressed.
    /// </summary>
    public bool CompressBitmaps { get; init; } = true;

    /// <summary>Largest desktop size the front accepts from the client (both sides).</summary>
    public int MaxDesktopSize { get; init; } = 8192;
}

/// <summary>The outcome of one <see cref="HoldFront.Receive"/>: bytes to send, events, or a typed failure.</summary>
public sealed class HoldFrontResult
{
    internal HoldFrontResult(ReadOnlyMemory<byte> output, IReadOnlyList<HoldFrontEvent> events, HoldFrontError error, string? errorText, PduError? pduError)
    {
        Output = output;
        Events = events;
        Error = error;
        ErrorText = errorText;
        PduError = pduError;
    }

    /// <summary>Bytes to send to the client, in order (whole frames; empty when nothing is due).</summary>
    public ReadOnlyMemory<byte> Output { get; }

    /// <summary>What happened, in order.</summary>
    public IReadOnlyList<HoldFrontEvent> Events { get; }

    /// <summary>None, or why the front stopped.</summary>
    public HoldFrontError Error { get; }

    /// <summary>A plain-English sentence for the log when <see cref="Error"/> is set.</summary>
    public string? ErrorText { get; }

    /// <summary>The parser's error when a PDU was malformed.</summary>
    public PduError? PduError { get; }

    /// <summary>True when there was no failure.</summary>
    public bool IsSuccess => Error == HoldFrontError.None;

    /// <inheritdoc />
    public override string ToString() => IsSuccess ? $"{Output.Length} bytes, {Events.Count} events" : $"{Error}: {ErrorText}";
}
