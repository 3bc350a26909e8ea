using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol.FastPath;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Targets;

/// <summary>
/// The connection-sequence interceptor driven by mutated scripts of PDUs in both directions
/// (<see cref="ConnectionSequenceCorpus"/>): it must never throw, and its verdicts must keep their promises.
/// </summary>
public static class ConnectionSequenceTargets
{
    /// <summary>The account the target injects (a rewritten Client Info PDU must carry it).</summary>
    public static readonly ConnectionSequenceAccount Account = new("VM1", "gh-user", "Sw0rdfish!2026");

    private static readonly byte[][] Seeds =
    [
        ConnectionSequenceCorpus.RelaySession,
        ConnectionSequenceCorpus.SignInMcsPhase,
        ConnectionSequenceCorpus.RedirectionAfterSignIn,
        ConnectionSequenceCorpus.SignInSendDataFirst,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("connection-sequence", Seeds, Oracle);
    }

    private static void Oracle(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var mode = input[0];
        var options = new ConnectionSequenceOptions
        {
            ClientRequestedProtocols = SecurityProtocol.Ssl | SecurityProtocol.Hybrid,
            HostSelectedProtocol = SecurityProtocol.Ssl,
            SignInRules = (mode & ConnectionSequenceCorpus.SignInRules) != 0,
            ClientInfoRelayed = (mode & ConnectionSequenceCorpus.ClientInfoRelayed) != 0,
            Account = (mode & ConnectionSequenceCorpus.HoldClientInfo) != 0 ? null : Account,
            MaxClientPdus = 8,
        };
        var interceptor = new ConnectionSequenceInterceptor(options);
        var bytes = input[1..].ToArray();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        ConnectionSequenceVerdict? refused = null;
        while (reader.TryRead(out var control))
        {
            var result = RdpFraming.TryReadFrame(ref reader, RdpFraming.MaxFrameBytes, acceptFastPath: true, out var sequence);
            if (result.Status != OperationStatus.Done)
            {
                return;
            }

            var frame = sequence.ToArray();
            var original = (byte[])frame.Clone();
            var direction = (control & 1) == 0 ? ConnectionSequenceDirection.ClientToHost : ConnectionSequenceDirection.HostToClient;
            var clientWasDone = interceptor.ClientDone;
            var hostWasDone = interceptor.HostDone;
            var verdict = interceptor.Intercept(direction, frame, result.Kind);
            Check(interceptor, options, direction, verdict, frame, original, refused, clientWasDone, hostWasDone);
            if (verdict.Action == ConnectionSequenceAction.Refuse)
            {
                refused ??= verdict;
            }
        }
    }

    private static void Check(
        ConnectionSequenceInterceptor interceptor,
        ConnectionSequenceOptions options,
        ConnectionSequenceDirection direction,
        ConnectionSequenceVerdict verdict,
        byte[] frame,
        byte[] original,
        ConnectionSequenceVerdict? refused,
        bool clientWasDone,
        bool hostWasDone)
    {
        if (refused is { } earlier && verdict != earlier)
        {
            throw new OracleViolationException($"after a refusal ({earlier.Refusal}) the interceptor answered {verdict.Action}");
        }

        if ((clientWasDone && !interceptor.ClientDone) || (hostWasDone && !interceptor.HostDone))
        {
            throw new OracleViolationException("a direction that was over started again");
        }

        var wasDone = direction == ConnectionSequenceDirection.ClientToHost ? clientWasDone : hostWasDone;
        if (wasDone && refused is null && (verdict.Action != ConnectionSequenceAction.Forward || !ReferenceEquals(verdict.Bytes, frame) || !frame.AsSpan().SequenceEqual(original)))
        {
            throw new OracleViolationException($"{verdict.Action} after the {direction} sequence was over: it must be a byte pump");
        }

        switch (verdict.Action)
        {
            case ConnectionSequenceAction.Refuse:
                if (verdict.Bytes is not null || verdict.Refusal == ConnectionSequenceRefusal.None)
                {
                    throw new OracleViolationException("a refusal with bytes to send or without a reason");
                }

                break;
            case ConnectionSequenceAction.Forward:
                if (!ReferenceEquals(verdict.Bytes, frame) || !frame.AsSpan().SequenceEqual(original) || verdict.Refusal != ConnectionSequenceRefusal.None)
                {
                    throw new OracleViolationException("a forwarded PDU was changed");
                }

                break;
            case ConnectionSequenceAction.Hold:
                if (options.Account is not null || direction != ConnectionSequenceDirection.ClientToHost || !interceptor.ClientDone || !ReferenceEquals(verdict.Bytes, frame))
                {
                    throw new OracleViolationException("a PDU held without reason");
                }

                break;
            case ConnectionSequenceAction.Rewrite:
                CheckRewrite(direction, verdict, frame, original);
                break;
            default:
                throw new OracleViolationException($"unknown action {verdict.Action}");
        }
    }

    private static void CheckRewrite(ConnectionSequenceDirection direction, ConnectionSequenceVerdict verdict, byte[] frame, byte[] original)
    {
        var bytes = verdict.Bytes ?? throw new OracleViolationException("a rewrite without bytes");
        if (!verdict.HoldsSecret)
        {
            // The MCS patches: in place, same length, only the protocol field (4 bytes) may differ.
            var changed = 0;
            for (var i = 0; i < original.Length; i++)
            {
                changed += bytes[i] != original[i] ? 1 : 0;
            }

            if (!ReferenceEquals(bytes, frame) || changed > 4)
            {
                throw new OracleViolationException($"an MCS patch changed {changed} bytes");
            }

            return;
        }

        // The Client Info PDU: the client's copy wiped, the new one carries the injected account.
        if (direction != ConnectionSequenceDirection.ClientToHost || frame.AsSpan().ContainsAnyExcept((byte)0))
        {
            throw new OracleViolationException("the client's Client Info PDU was not wiped");
        }

        if (!ClientInfoPdu.TryParse(bytes, out var pdu, out var error))
        {
            throw new OracleViolationException($"the rewritten Client Info PDU does not parse: {error}");
        }

        if (pdu.Packet.UserName != Account.UserName || pdu.Packet.Domain != Account.Domain || pdu.Packet.Password != Account.Password)
        {
            throw new OracleViolationException("the rewritten Client Info PDU does not carry the injected account");
        }
    }
}
