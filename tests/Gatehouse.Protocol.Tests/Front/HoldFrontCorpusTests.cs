using System.Buffers;
using Gatehouse.Fuzz;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Front;

namespace Gatehouse.Protocol.Tests.Front;

/// <summary>The hold-front regression corpus: whole client streams that must reach Active (or, for "bad-" files, fail typed).</summary>
public sealed class HoldFrontCorpusTests
{
    public static TheoryData<string> Files() => [.. RepoPaths.FilesOf(RepoPaths.CorpusDirectory, "hold-front").Select(f => Path.GetFileName(f))];

    [Theory]
    [MemberData(nameof(Files))]
    public void CorpusStream_ReachesActive_OrFailsTyped(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(RepoPaths.CorpusDirectory, "hold-front", file));
        var front = new HoldFront(new HoldFrontOptions { ShareId = 0x0001_03EA });
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        var activated = false;
        HoldFrontResult? last = null;
        while (front.State != HoldFrontState.Closed && RdpFraming.TryReadFrame(ref reader, out var frame, out _, out _) == OperationStatus.Done)
        {
            last = front.Receive(frame.ToArray());
            activated |= last.Events.OfType<Activated>().Any();
        }

        Assert.True(activated, $"{file} did not reach Active: {last}");
        if (file.StartsWith("bad-", StringComparison.Ordinal))
        {
            Assert.Equal(HoldFrontError.MalformedPdu, last!.Error);
        }
        else
        {
            Assert.True(last!.IsSuccess, last.ToString());
            Assert.True(reader.End);
        }
    }

    [Fact]
    public void CapturedFreeRdpConnectInitial_IsAnswered()
    {
        // FreeRDP 3.10.3's own Connect Initial, captured against xrdp.
        var front = new HoldFront(new HoldFrontOptions());
        var client = new FrontTestClient(new HoldFrontClientSettings());

        client.ReadConnectResponse(front.Receive(McsCorpus.ConnectInitialFrame));

        Assert.Equal(front.Channels.Count, client.StaticChannelIds.Count);
        Assert.NotEmpty(front.Channels);
        Assert.True(front.DesktopWidth > 0);
        Assert.Equal(32, front.BitsPerPixel);
        Assert.True(front.ClientSupportsRedirection);
    }
}
