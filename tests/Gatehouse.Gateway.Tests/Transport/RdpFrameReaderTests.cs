using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Gateway.Transport;
using Gatehouse.Protocol;
using Gatehouse.Protocol.FastPath;

namespace Gatehouse.Gateway.Tests.Transport;

/// <summary>The gateway's one RDP frame reader, over a pipe and exactly over a stream.</summary>
public sealed class RdpFrameReaderTests
{
    private static readonly byte[] Tpkt = X224Corpus.SpecConnectionRequest;
    private static readonly byte[] ClientHello = [0x16, 0x03, 0x01, 0x00, 0x05];

    [Fact]
    public async Task Pipe_TwoFramesAndMore_ReturnsOneFrameAtATime_AndLeavesTheRestInThePipe()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync((byte[])[.. Tpkt, .. FramingCorpus.FastPathShort, .. ClientHello]);
        var reader = new RdpFrameReader(pipe.Reader, 1024);

        var first = await reader.ReadAsync(CancellationToken.None);
        Assert.Equal(Tpkt, first!.Value.Bytes);
        Assert.Equal(RdpFrameKind.SlowPath, first.Value.Kind);
        var second = await reader.ReadAsync(CancellationToken.None);
        Assert.Equal(FramingCorpus.FastPathShort, second!.Value.Bytes);
        Assert.Equal(RdpFrameKind.FastPath, second.Value.Kind);

        // What follows was neither consumed nor examined: the next reader gets it at once.
        var rest = await pipe.Reader.ReadAsync();
        Assert.Equal(ClientHello, rest.Buffer.ToArray());
    }

    [Fact]
    public async Task Pipe_FrameInTwoWrites_WaitsForTheRest()
    {
        var pipe = new Pipe();
        var reader = new RdpFrameReader(pipe.Reader, 1024, acceptFastPath: false);
        await pipe.Writer.WriteAsync(Tpkt.AsMemory(0, 6));
        var pending = reader.ReadAsync(CancellationToken.None);
        Assert.False(pending.IsCompleted);
        await pipe.Writer.WriteAsync(Tpkt.AsMemory(6));
        Assert.Equal(Tpkt, (await pending.AsTask().WaitAsync(Until.Backstop))!.Value.Bytes);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(10)]
    public async Task Pipe_EndOfStreamBeforeAWholeFrame_IsNull(int have)
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Tpkt.AsMemory(0, have));
        await pipe.Writer.CompleteAsync();
        Assert.Null(await new RdpFrameReader(pipe.Reader, 1024).ReadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Pipe_FrameOverTheCap_IsRefusedFromItsHeader()
    {
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync((byte[])[0x03, 0x00, 0x08, 0x00]);
        var e = await Assert.ThrowsAsync<RdpFrameException>(async () => await new RdpFrameReader(pipe.Reader, 1024).ReadAsync(CancellationToken.None));
        Assert.True(e.IsTooLarge);
        Assert.Equal(2048, e.DeclaredLength);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Stream_ReadsExactlyTheFrame_NeverWhatFollows(bool oneByteAtATime)
    {
        byte[] tiny = [0x04, 0x03, 0xaa]; // a 3-byte fast-path PDU: shorter than a TPKT header
        byte[] script = [.. Tpkt, .. FramingCorpus.FastPathInput, .. FramingCorpus.FastPathShort, .. tiny, .. ClientHello];
        var stream = oneByteAtATime ? new OneByteStream(script) : new MemoryStream(script);
        var reader = new RdpFrameReader(stream, 1024);
        Assert.Equal(Tpkt, (await reader.ReadAsync(CancellationToken.None))!.Value.Bytes);
        Assert.Equal(Tpkt.Length, stream.Position);
        var twoByteLength = await reader.ReadAsync(CancellationToken.None);
        Assert.Equal(FramingCorpus.FastPathInput, twoByteLength!.Value.Bytes);
        Assert.Equal(RdpFrameKind.FastPath, twoByteLength.Value.Kind);
        var oneByteLength = await reader.ReadAsync(CancellationToken.None);
        Assert.Equal(FramingCorpus.FastPathShort, oneByteLength!.Value.Bytes);
        Assert.Equal(tiny, (await reader.ReadAsync(CancellationToken.None))!.Value.Bytes);
        Assert.Equal(script.Length - ClientHello.Length, stream.Position);
    }

    [Fact]
    public async Task Stream_EndOfStreamInsideAFrame_IsNull()
    {
        var reader = new RdpFrameReader(new MemoryStream(Tpkt[..^1]), 1024);
        Assert.Null(await reader.ReadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Stream_TpktOnly_RefusesAFastPathPdu_WithTheTypedError()
    {
        var reader = new RdpFrameReader(new MemoryStream(FramingCorpus.FastPathShort), 1024, acceptFastPath: false);
        var e = await Assert.ThrowsAsync<RdpFrameException>(async () => await reader.ReadAsync(CancellationToken.None));
        Assert.Equal(PduErrorKind.UnexpectedMessageType, e.Error!.Kind);
        Assert.False(e.IsTooLarge);
        Assert.Equal("TPKT: version: got 4, expected 3", e.Message);
    }

    [Fact]
    public async Task Stream_FrameOverTheCap_IsRefusedBeforeItsBodyIsRead()
    {
        var stream = new MemoryStream([0x03, 0x00, 0xff, 0xff, .. new byte[100]]);
        var e = await Assert.ThrowsAsync<RdpFrameException>(async () => await new RdpFrameReader(stream, 1024).ReadAsync(CancellationToken.None));
        Assert.True(e.IsTooLarge);
        Assert.Equal(65535, e.DeclaredLength);
        Assert.Equal(4, stream.Position);
    }

    [Fact]
    public void Constructor_CapOutsideTheFraming_IsAProgrammingError()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpFrameReader(new MemoryStream(), 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RdpFrameReader(new Pipe().Reader, RdpFraming.MaxFrameBytes + 1));
    }

    /// <summary>A stream that gives at most one byte per read and tells how far it was read.</summary>
    private sealed class OneByteStream(byte[] script) : MemoryStream(script)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);
    }
}
