using System.Buffers;
using System.Net.Security;
using Gatehouse.Protocol.X224;

namespace Gatehouse.LoadGen.Gateway;

/// <summary>
/// The connection-sequence frames the relay needs before it switches to plain copying, from the FreeRDP 3 ↔ xrdp
/// capture in testdata/captures/freerdp3-xrdp-tls (embedded), and X.224 frames built with the protocol writers.
/// </summary>
internal static class Captures
{
    public static byte[] ConnectInitial { get; } = Load("c2s-001-mcs-connect-initial.bin");

    public static byte[] ClientInfo { get; } = Load("c2s-010-client-info.bin");

    public static byte[] ConnectResponse { get; } = Load("s2c-001-mcs-connect-response.bin");

    public static byte[] DemandActive { get; } = Load("s2c-011-demand-active.bin");

    /// <summary>X.224 Connection Confirm selecting TLS (PROTOCOL_SSL), as xrdp answers.</summary>
    public static byte[] ConnectionConfirmSsl { get; } = Write(b => new ConnectionConfirm(NegotiationResult.Response(SecurityProtocol.Ssl, NegotiationResponseFlags.None)).Write(b));

    /// <summary>X.224 Connection Request asking for TLS only (the direct baseline's client).</summary>
    public static byte[] ConnectionRequestSsl { get; } = Write(b => new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.Cookie, tokenValue: "benchuser", negotiation: new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.Ssl)).Write(b));

    /// <summary>X.224 Connection Request asking for RDS AAD Auth (PROTOCOL_RDSAAD), as FreeRDP's /sec:aad sends it.</summary>
    public static byte[] ConnectionRequestAad { get; } = Write(b => new ConnectionRequest(tokenKind: ConnectionRequestTokenKind.Cookie, tokenValue: "benchuser", negotiation: new NegotiationRequest(NegotiationRequestFlags.None, SecurityProtocol.RdsAad)).Write(b));

    private static byte[] Write(Action<ArrayBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Load(string name)
    {
        using var stream = typeof(Captures).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"the capture {name} is not embedded");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}

/// <summary>TPKT framing for the benchmark's own peers.</summary>
internal static class RdpFrames
{
    /// <summary>One whole TPKT frame; null when the peer closes first.</summary>
    public static async Task<byte[]?> ReadTpktAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        try
        {
            await stream.ReadExactlyAsync(header, cancellationToken);
            var frame = new byte[(header[2] << 8) | header[3]];
            header.CopyTo(frame, 0);
            await stream.ReadExactlyAsync(frame.AsMemory(4), cancellationToken);
            return frame;
        }
        catch (EndOfStreamException)
        {
            return null;
        }
    }

    /// <summary>Bytes up to and including a NUL (the RDS AAD messages).</summary>
    public static async Task<byte[]> ReadNulTerminatedAsync(SslStream tls, CancellationToken cancellationToken)
    {
        var message = new List<byte>(256);
        var one = new byte[1];
        while (true)
        {
            if (await tls.ReadAsync(one, cancellationToken) == 0)
            {
                throw new EndOfStreamException("the gateway closed before the end of its message");
            }

            message.Add(one[0]);
            if (one[0] == 0)
            {
                return [.. message];
            }
        }
    }
}
