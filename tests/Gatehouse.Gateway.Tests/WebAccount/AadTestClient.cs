using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Gatehouse.Protocol.RdsAad;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Gateway.Tests.WebAccount;

/// <summary>A minimal RDS AAD Auth client, as FreeRDP 3 /sec:aad speaks it.</summary>
internal sealed class AadTestClient : IAsyncDisposable
{
    /// <summary>FreeRDP 3.10.3's Connection Request for /sec:aad (freerdp-aad-client.md §1).</summary>
    private static readonly byte[] AadRequest = Convert.FromHexString("0300002a25e00000000000436f6f6b69653a206d737473686173683d726f6f740d0a0100080010000000");

    private readonly TcpClient _tcp;
    private readonly SslStream _tls;

    private AadTestClient(TcpClient tcp, SslStream tls)
    {
        _tcp = tcp;
        _tls = tls;
    }

    public static async Task<AadTestClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(AadRequest);
        var header = new byte[4];
        await stream.ReadExactlyAsync(header);
        var frame = new byte[(header[2] << 8) | header[3]];
        header.CopyTo(frame, 0);
        await stream.ReadExactlyAsync(frame.AsMemory(4));
        Assert.True(ConnectionConfirm.TryParse(frame, out var confirm, out _));
        Assert.Equal(SecurityProtocol.RdsAad, confirm.Result!.Value.SelectedProtocol);
        var tls = new SslStream(stream, false, (_, certificate, _, _) => certificate is not null);
        await tls.AuthenticateAsClientAsync("vm1.gatehouse.test");
        return new AadTestClient(tcp, tls);
    }

    public async Task<string> ReadNonceAsync()
    {
        var message = await ReadMessageAsync();
        Assert.True(RdsAadServerNonce.TryParse(message, out var nonce, out var error), error?.ToString());
        return nonce.Nonce;
    }

    public async Task<int> ReadResultAsync()
    {
        var message = await ReadMessageAsync();
        Assert.True(RdsAadAuthResult.TryParse(message, out var result, out var error), error?.ToString());
        return result.Result;
    }

    public async Task SendAsync(byte[] bytes)
    {
        await _tls.WriteAsync(bytes);
        await _tls.FlushAsync();
    }

    public async Task<bool> IsClosedAsync()
    {
        try
        {
            return await _tls.ReadAsync(new byte[1]).AsTask().WaitAsync(Until.Backstop) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tls.DisposeAsync();
        _tcp.Dispose();
    }

    private async Task<byte[]> ReadMessageAsync()
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            var n = await _tls.ReadAsync(one).AsTask().WaitAsync(Until.Backstop);
            Assert.True(n == 1, "the gateway closed before a whole RDS AAD message");
            bytes.Add(one[0]);
            if (one[0] == 0)
            {
                return [.. bytes];
            }
        }
    }
}
