using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Front;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The hold front driven by whole client sequences: the input is the client's byte stream (Connect Initial to Font
/// List, then input), framed as the gateway frames it. Every frame gets a result or a typed failure; what the front
/// writes must frame again; once Active it must paint and redirect without throwing.
/// </summary>
public static class HoldFrontTargets
{
    public const uint ShareId = 0x0001_03EA;

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("hold-front", Seeds(), Oracle);
        yield return new FuzzTarget("hold-front-input", InputSeeds(), InputOracle);
    }

    private static byte[][] Seeds()
    {
        var plain = new HoldFrontClientSettings();
        var skip = new HoldFrontClientSettings { SkipChannelJoin = true, MessageChannel = true, Want32Bpp = false, HighColorDepth = 16, Channels = ["drdynvc", "rdpgfx"] };
        var none = new HoldFrontClientSettings { Channels = [], MaxRequestSize = null };
        return
        [
            Join(HoldFrontClientPdus.Sequence(plain, ShareId), ActivePdus(plain)),
            Join(HoldFrontClientPdus.Sequence(skip, ShareId), ActivePdus(skip)),
            Join(HoldFrontClientPdus.Sequence(none, ShareId), [HoldFrontClientPdus.Disconnect()]),
        ];
    }

    private static byte[][] InputSeeds() =>
    [
        HoldFrontClientPdus.FastPathInput(3, [0x00, 0x1C, 0x01, 0x1C, 0x08, 0x00, 0x10, 0x20, 0x00, 0x30, 0x00]),
        HoldFrontClientPdus.FastPathInput(2, [0x80, 0x41, 0x00, 0x20, 0x78, 0x02, 0x10, 0x00, 0x20, 0x00]),
        HoldFrontClientPdus.FastPathInput(1, [0x60]),
    ];

    private static List<byte[]> ActivePdus(HoldFrontClientSettings settings)
    {
        var user = HoldFrontClientPdus.UserChannel(settings);
        return
        [
        HoldFrontClientPdus.FastPathInput(2, [0x00, 0x1C, 0x01, 0x1C]),
        HoldFrontClientPdus.SlowPathInput(user, ShareId, (0x0004, 0x0000, 0x001C, 0), (0x8001, 0x9000, 10, 20), (0x0005, 0, 0x41, 0)),
        HoldFrontClientPdus.RefreshRect(user, ShareId, (0, 0, 63, 63)),
        HoldFrontClientPdus.SuppressOutput(user, ShareId, false),
        HoldFrontClientPdus.SuppressOutput(user, ShareId, true, (ushort)settings.Width, (ushort)settings.Height),
        HoldFrontClientPdus.ShutdownRequest(user, ShareId),
        ];
    }

    private static byte[] Join(List<byte[]> first, List<byte[]> second) => [.. first.Concat(second).SelectMany(f => f)];

    private static void Oracle(ReadOnlySpan<byte> input)
    {
        var front = new HoldFront(new HoldFrontOptions { ClientRequestedProtocols = SecurityProtocol.Ssl | SecurityProtocol.Hybrid, ShareId = ShareId });
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(input.ToArray()));
        while (front.State != HoldFrontState.Closed)
        {
            var status = RdpFraming.TryReadFrame(ref reader, out var frame, out _, out var framingError);
            if (status != OperationStatus.Done)
            {
                if (status == OperationStatus.InvalidData && framingError is null)
                {
                    throw new OracleViolationException("framing refused without a PduError");
                }

                break;
            }

            var result = front.Receive(frame.ToArray());
            if (!result.IsSuccess)
            {
                if (result.ErrorText is null || front.State != HoldFrontState.Closed || result.Output.Length != 0)
                {
                    throw new OracleViolationException($"a failure must carry text, close the front and write nothing: {result}");
                }

                if (front.Receive([0x03]).Error != HoldFrontError.Closed)
                {
                    throw new OracleViolationException("a closed front read another frame");
                }

                return;
            }

            CheckFrames(result.Output.Span);
        }

        if (front.State == HoldFrontState.Active)
        {
            var output = new ArrayBufferWriter<byte>();
            var pixels = new uint[70 * 5];
            front.WriteBitmap(output, 0, 0, Math.Min(70, front.DesktopWidth), Math.Min(5, front.DesktopHeight), pixels, 70);
            CheckFrames(output.WrittenSpan);
            output.ResetWrittenCount();
            front.WriteRedirection(output, "TOKEN0123456789"u8);
            if (!X224Data.TryUnwrapFrame(output.WrittenSpan, out _, out var error))
            {
                throw new OracleViolationException($"redirection frame does not unwrap: {error}");
            }
        }
    }

    private static void InputOracle(ReadOnlySpan<byte> input)
    {
        var events = new List<HoldFrontEvent>();
        if (!FrontInput.TryParseFastPath(input, events, out var error) && error is null)
        {
            throw new OracleViolationException("fast-path input refused without a PduError");
        }

        events.Clear();
        if (!FrontInput.TryParseSlowPath(input, events, out error) && error is null)
        {
            throw new OracleViolationException("slow-path input refused without a PduError");
        }

        if (!FrontInput.TryParseRefreshRect(input, out _, out error) && error is null)
        {
            throw new OracleViolationException("refresh rect refused without a PduError");
        }

        if (!FrontInput.TryParseSuppressOutput(input, out _, out error) && error is null)
        {
            throw new OracleViolationException("suppress output refused without a PduError");
        }

        if (!ConfirmActiveInfo.TryParse(input, out _, out error) && error is null)
        {
            throw new OracleViolationException("confirm active refused without a PduError");
        }

        if (!ServerRedirection.TryGetLoadBalanceInfo(input, out _, out error) && error is null)
        {
            throw new OracleViolationException("load balance info refused without a PduError");
        }
    }

    /// <summary>Output must be whole frames, back to back.</summary>
    private static void CheckFrames(ReadOnlySpan<byte> output)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(output.ToArray()));
        while (!reader.End)
        {
            if (RdpFraming.TryReadFrame(ref reader, out _, out _, out var error) != OperationStatus.Done)
            {
                throw new OracleViolationException($"the front wrote bytes that do not frame: {error}");
            }
        }
    }
}
