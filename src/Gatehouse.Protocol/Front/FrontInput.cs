using Gatehouse.Protocol.FastPath;

namespace Gatehouse.Protocol.Front;

/// <summary>
/// Client input and display-control PDUs the hold front reads: [MS-RDPBCGR] 2.2.8.1.2 fast-path input,
/// 2.2.8.1.1.3 slow-path TS_INPUT_PDU_DATA, 2.2.11.2 Refresh Rect and 2.2.11.3 Suppress Output. Every parser appends
/// events to a list, has a cap on the events it reads, and returns a <see cref="PduError"/> for bad input.
/// </summary>
public static class FrontInput
{
    /// <summary>Most events one slow-path input PDU may carry here (fast path cannot say more than 255).</summary>
    public const int MaxSlowPathEvents = 1024;

    private const string FastPathName = "TS_FP_INPUT_PDU";
    private const string SlowPathName = "TS_INPUT_PDU_DATA";
    private const string RefreshName = "Refresh Rect PDU";
    private const string SuppressName = "Suppress Output PDU";

    // Pointer flags ([MS-RDPBCGR] 2.2.8.1.1.3.1.1.3 / .4).
    private const ushort PtrWheelNegative = 0x0100;
    private const ushort PtrWheel = 0x0200;
    private const ushort PtrHWheel = 0x0400;
    private const ushort PtrDown = 0x8000;
    private const ushort PtrButton1 = 0x1000;
    private const ushort PtrButton2 = 0x2000;
    private const ushort PtrButton3 = 0x4000;
    private const ushort PtrXButton1 = 0x0001;
    private const ushort PtrXButton2 = 0x0002;

    /// <summary>Parses one whole fast-path input PDU (header included) and appends its events.</summary>
    public static bool TryParseFastPath(ReadOnlySpan<byte> pdu, List<HoldFrontEvent> events, out PduError? error)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (!FastPathHeader.TryParse(pdu, out var header, out error))
        {
            return false;
        }

        if (header.Length != pdu.Length)
        {
            error = PduError.Invalid(FastPathName, "length", $"{header.Length} disagrees with the {pdu.Length}-byte PDU");
            return false;
        }

        if (header.SecurityFlags != 0)
        {
            error = PduError.Unsupported(FastPathName, "fpInputHeader.flags", "encrypted or checksummed fast-path input (standard RDP security) is not supported");
            return false;
        }

        var reader = new WireReader(pdu, FastPathName);
        reader.TrySkip(header.HeaderSize, "header");
        int count = header.EventCount;
        if (count == 0)
        {
            if (!reader.TryReadU8("numEvents", out var n))
            {
                error = reader.Error;
                return false;
            }

            count = n;
        }

        for (var i = 0; i < count; i++)
        {
            if (!reader.TryReadU8("eventHeader", out var eventHeader))
            {
                break;
            }

            var flags = eventHeader & 0x1F;
            switch (eventHeader >> 5)
            {
                case 0: // FASTPATH_INPUT_EVENT_SCANCODE
                    if (reader.TryReadU8("keyCode", out var key))
                    {
                        events.Add(new KeyPressed(key, (flags & 0x02) != 0, (flags & 0x01) != 0));
                    }

                    break;
                case 1: // FASTPATH_INPUT_EVENT_MOUSE
                case 2: // FASTPATH_INPUT_EVENT_MOUSEX
                    if (reader.TryReadU16LE("pointerFlags", out var pointer) && reader.TryReadU16LE("xPos", out var x) && reader.TryReadU16LE("yPos", out var y))
                    {
                        events.Add(eventHeader >> 5 == 1 ? Pointer(pointer, x, y) : ExtendedPointer(pointer, x, y));
                    }

                    break;
                case 3: // FASTPATH_INPUT_EVENT_SYNC
                    events.Add(new KeyboardSynchronized((uint)flags));
                    break;
                case 4: // FASTPATH_INPUT_EVENT_UNICODE
                    if (reader.TryReadU16LE("unicodeCode", out var unit))
                    {
                        events.Add(new UnicodeKey((char)unit, (flags & 0x01) != 0));
                    }

                    break;
                case 6: // FASTPATH_INPUT_EVENT_QOE_TIMESTAMP: read and ignored.
                    reader.TrySkip(4, "timestamp");
                    break;
                default:
                    reader.Fail(PduError.Unsupported(FastPathName, "eventCode", $"event code {eventHeader >> 5} is not a fast-path input event"));
                    break;
            }
        }

        if (reader.Error is null && reader.Remaining != 0)
        {
            reader.FailInvalid("numEvents", $"{reader.Remaining} bytes follow the last event");
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Parses the body of a slow-path input PDU (after the share data header) and appends its events.</summary>
    public static bool TryParseSlowPath(ReadOnlySpan<byte> body, List<HoldFrontEvent> events, out PduError? error)
    {
        ArgumentNullException.ThrowIfNull(events);
        var reader = new WireReader(body, SlowPathName);
        if (!reader.TryReadU16LE("numEvents", out var count) || !reader.TrySkip(2, "pad2Octets"))
        {
            error = reader.Error;
            return false;
        }

        if (count > MaxSlowPathEvents)
        {
            error = PduError.TooLarge(SlowPathName, "numEvents", count, MaxSlowPathEvents);
            return false;
        }

        for (var i = 0; i < count && reader.Error is null; i++)
        {
            if (!reader.TrySkip(4, "eventTime") || !reader.TryReadU16LE("messageType", out var type))
            {
                break;
            }

            ushort a = 0, b = 0, c = 0;
            if (!reader.TryReadU16LE("slowPathInputData", out a) || !reader.TryReadU16LE("slowPathInputData", out b) || !reader.TryReadU16LE("slowPathInputData", out c))
            {
                break;
            }

            switch (type)
            {
                case 0x0000: // INPUT_EVENT_SYNC: pad2Octets, toggleFlags
                    events.Add(new KeyboardSynchronized(b | ((uint)c << 16)));
                    break;
                case 0x0002: // INPUT_EVENT_UNUSED
                    break;
                case 0x0004: // INPUT_EVENT_SCANCODE: keyboardFlags, keyCode, pad2Octets
                    events.Add(new KeyPressed(unchecked((byte)b), (a & 0x0100) != 0, (a & 0x8000) != 0));
                    break;
                case 0x0005: // INPUT_EVENT_UNICODE
                    events.Add(new UnicodeKey((char)b, (a & 0x8000) != 0));
                    break;
                case 0x8001: // INPUT_EVENT_MOUSE
                    events.Add(Pointer(a, b, c));
                    break;
                case 0x8002: // INPUT_EVENT_MOUSEX
                    events.Add(ExtendedPointer(a, b, c));
                    break;
                default:
                    reader.Fail(PduError.Unsupported(SlowPathName, "messageType", $"0x{type:X4} is not an input event"));
                    break;
            }
        }

        error = reader.Error;
        return error is null;
    }

    /// <summary>Parses the body of a Refresh Rect PDU (numberOfAreas, pad3Octets, TS_RECTANGLE16 areas).</summary>
    public static bool TryParseRefreshRect(ReadOnlySpan<byte> body, out RefreshRequested value, out PduError? error)
    {
        value = new RefreshRequested([]);
        var reader = new WireReader(body, RefreshName);
        if (!reader.TryReadU8("numberOfAreas", out var count) || !reader.TrySkip(3, "pad3Octets"))
        {
            error = reader.Error;
            return false;
        }

        var areas = new List<HoldRectangle>(Math.Min((int)count, reader.Remaining / 8));
        for (var i = 0; i < count; i++)
        {
            if (!TryReadRectangle(ref reader, out var area))
            {
                error = reader.Error;
                return false;
            }

            areas.Add(area);
        }

        value = new RefreshRequested(areas);
        error = null;
        return true;
    }

    /// <summary>Parses the body of a Suppress Output PDU (allowDisplayUpdates, pad3Octets, desktopRect when allowed).</summary>
    public static bool TryParseSuppressOutput(ReadOnlySpan<byte> body, out SuppressOutput value, out PduError? error)
    {
        value = new SuppressOutput(false, null);
        var reader = new WireReader(body, SuppressName);
        if (!reader.TryReadU8("allowDisplayUpdates", out var allow) || !reader.TrySkip(3, "pad3Octets"))
        {
            error = reader.Error;
            return false;
        }

        switch (allow)
        {
            case 0: // SUPPRESS_DISPLAY_UPDATES: no rectangle.
                value = new SuppressOutput(false, null);
                break;
            case 1 when TryReadRectangle(ref reader, out var area):
                value = new SuppressOutput(true, area);
                break;
            case 1:
                break;
            default:
                reader.FailInvalid("allowDisplayUpdates", $"{allow} is neither 0 nor 1");
                break;
        }

        error = reader.Error;
        return error is null;
    }

    private static bool TryReadRectangle(ref WireReader reader, out HoldRectangle area)
    {
        area = default;
        if (!reader.TryReadU16LE("left", out var left) || !reader.TryReadU16LE("top", out var top)
            || !reader.TryReadU16LE("right", out var right) || !reader.TryReadU16LE("bottom", out var bottom))
        {
            return false;
        }

        area = new HoldRectangle(left, top, right, bottom);
        return true;
    }

    private static Mouse Pointer(ushort flags, ushort x, ushort y)
    {
        if ((flags & (PtrWheel | PtrHWheel)) != 0)
        {
            // The rotation is a 9-bit two's complement number: WheelRotationMask 0x01FF with the sign in 0x0100.
            var rotation = flags & 0x01FF;
            var delta = (flags & PtrWheelNegative) != 0 ? rotation - 0x200 : rotation;
            return new Mouse(x, y, MouseButton.None, false, delta, (flags & PtrHWheel) != 0);
        }

        var button = (flags & PtrButton1) != 0 ? MouseButton.Left
            : (flags & PtrButton2) != 0 ? MouseButton.Right
            : (flags & PtrButton3) != 0 ? MouseButton.Middle
            : MouseButton.None;
        return new Mouse(x, y, button, button != MouseButton.None && (flags & PtrDown) != 0, 0, false);
    }

    private static Mouse ExtendedPointer(ushort flags, ushort x, ushort y)
    {
        var button = (flags & PtrXButton1) != 0 ? MouseButton.X1 : (flags & PtrXButton2) != 0 ? MouseButton.X2 : MouseButton.None;
        return new Mouse(x, y, button, button != MouseButton.None && (flags & PtrDown) != 0, 0, false);
    }
}
