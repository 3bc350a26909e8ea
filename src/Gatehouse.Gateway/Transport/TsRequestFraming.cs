using Gatehouse.Protocol.CredSsp;

namespace Gatehouse.Gateway.Transport;

/// <summary>Reads whole CredSSP TSRequest frames from a stream: the client leg's NLA server and the host leg's NLA logon.</summary>
internal static class TsRequestFraming
{
    /// <summary>
    /// Reads one DER TSRequest (at most <see cref="TsRequest.MaxSize"/>, the length checked before anything is
    /// allocated): the frame, or null with the problem when it is malformed, or null with no problem when the peer closed.
    /// </summary>
    public static async Task<(byte[]? Frame, string? Problem)> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = new byte[6];
        var have = 0;
        int length;
        while (true)
        {
            if (!TsRequest.TryGetFrameLength(header.AsSpan(0, have), out length, out var error))
            {
                return (null, error!.ToString());
            }

            if (length > 0)
            {
                break;
            }

            if (have == header.Length)
            {
                return (null, "TSRequest: malformed length");
            }

            if (await stream.ReadAsync(header.AsMemory(have, 1), cancellationToken).ConfigureAwait(false) == 0)
            {
                return (null, null);
            }

            have++;
        }

        if (length < have)
        {
            return (null, "TSRequest: shorter than its header");
        }

        var frame = new byte[length];
        header.AsSpan(0, have).CopyTo(frame);
        try
        {
            await stream.ReadExactlyAsync(frame.AsMemory(have), cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException)
        {
            return (null, null);
        }

        return (frame, null);
    }
}
