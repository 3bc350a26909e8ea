using System.Buffers;
using Gatehouse.Fuzz.Corpus;
using Gatehouse.Protocol;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.Rdp;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the MCS domain PDUs, the Client Info PDU and its rewriter, Set Error Info and Server Redirection.</summary>
public static class ClientInfoTargets
{
    private static readonly byte[][] McsSeeds =
    [
        ClientInfoCorpus.SpecErectDomain,
        ClientInfoCorpus.SpecAttachUserRequest,
        ClientInfoCorpus.SpecAttachUserConfirm,
        ClientInfoCorpus.SpecChannelJoinRequest,
        ClientInfoCorpus.SpecChannelJoinConfirm,
        ClientInfoCorpus.DisconnectUserRequested,
        ClientInfoCorpus.CapturedSendDataLongForm[7..],
        ClientInfoCorpus.CapturedSendDataIndication[7..],
        ClientInfoCorpus.CapturedLicenseError[7..],
    ];

    private static readonly byte[][] FrameSeeds =
    [
        ClientInfoCorpus.CapturedClientInfo,
        ClientInfoCorpus.ClientInfoWithCookie,
        ClientInfoCorpus.MinimalClientInfo,
    ];

    private static readonly byte[][] ShareSeeds =
    [
        ClientInfoCorpus.SetErrorInfo,
        ClientInfoCorpus.EnhancedRedirection,
        ClientInfoCorpus.StandardRedirection,
    ];

    public static IEnumerable<FuzzTarget> All()
    {
        yield return new FuzzTarget("mcs-domain-pdus", McsSeeds, Oracles.All(
            Oracles.ParseOnly<DomainMcsPduType>(McsDomainPdu.TryClassify),
            Oracles.ParseWriteParse<ErectDomainRequest>(ErectDomainRequest.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseWriteParse<AttachUserRequest>(AttachUserRequest.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseWriteParse<AttachUserConfirm>(AttachUserConfirm.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseWriteParse<ChannelJoinRequest>(ChannelJoinRequest.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseWriteParse<ChannelJoinConfirm>(ChannelJoinConfirm.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseWriteParse<DisconnectProviderUltimatum>(DisconnectProviderUltimatum.TryParse, (v, o) => v.Write(o))));
        yield return new FuzzTarget("mcs-send-data", McsSeeds, SendDataOracle);
        yield return new FuzzTarget("client-info-packet", [ClientInfoCorpus.SpecInfoPacket, .. FrameSeeds.Select(f => f[19..])],
            Oracles.ParseWriteParse<ClientInfoPacket>(ClientInfoPacket.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("client-info-pdu", FrameSeeds, Oracles.ParseWriteParse<ClientInfoPdu>(ClientInfoPdu.TryParse, (v, o) => v.Write(o)));
        yield return new FuzzTarget("client-info-rewrite", FrameSeeds, RewriteOracle);
        yield return new FuzzTarget("set-error-info", ShareSeeds, Oracles.All(
            Oracles.ParseWriteParse<SetErrorInfoPdu>(SetErrorInfoPdu.TryParse, (v, o) => v.Write(o)),
            Oracles.ParseOnly<ShareDataHeader>(ShareDataHeader.TryParse)));
        yield return new FuzzTarget("server-redirection", ShareSeeds, Oracles.All(
            Oracles.ParseOnly<ServerRedirectionHeader>(ServerRedirection.TryParse),
            Oracles.ParseOnly<ServerRedirectionHeader>(ServerRedirection.TryParseStandard),
            Oracles.ParseOnly<ServerRedirectionHeader>(ServerRedirection.TryParseEnhanced),
            input =>
            {
                if (ServerRedirection.TryParse(input, out _, out _) && !ServerRedirection.IsRedirection(input))
                {
                    throw new OracleViolationException("parsed a redirection that IsRedirection does not recognise");
                }
            }));
    }

    /// <summary>Send Data: the user data is a slice of the input, and header + user data write back byte-exact.</summary>
    private static void SendDataOracle(ReadOnlySpan<byte> input)
    {
        if (!McsSendData.TryParse(input, out var value, out var userData, out var error))
        {
            if (error is null)
            {
                throw new OracleViolationException("Send Data refused without a PduError");
            }

            return;
        }

        var buffer = new ArrayBufferWriter<byte>();
        value.Write(buffer, userData);
        if (!buffer.WrittenSpan.SequenceEqual(input))
        {
            throw new OracleViolationException("Send Data did not write back byte-exact");
        }
    }

    /// <summary>A rewrite either refuses with a PduError or produces a frame that parses and carries the new credentials.</summary>
    private static void RewriteOracle(ReadOnlySpan<byte> input)
    {
        var credentials = new ClientInfoCredentials("FUZZ", "gh-admin", "Sw0rdfish!");
        var sized = ClientInfoRewriter.TryGetRewrittenSize(input, credentials, out var size, out var sizeError);
        var buffer = new ArrayBufferWriter<byte>();
        if (!ClientInfoRewriter.TryRewrite(input, credentials, buffer, out var error))
        {
            if (error is null || sized || sizeError is null)
            {
                throw new OracleViolationException("rewrite refused without a PduError, or size and rewrite disagree");
            }

            if (buffer.WrittenCount != 0)
            {
                throw new OracleViolationException("a refused rewrite wrote bytes");
            }

            return;
        }

        if (!sized || size != buffer.WrittenCount)
        {
            throw new OracleViolationException("computed size disagrees with the rewrite");
        }

        if (!ClientInfoPdu.TryParse(buffer.WrittenSpan, out var pdu, out var again))
        {
            throw new OracleViolationException($"rewritten frame does not parse: {again}");
        }

        if (pdu.Packet.Domain != "FUZZ" || pdu.Packet.UserName != "gh-admin" || pdu.Packet.Password != "Sw0rdfish!"
            || (pdu.Packet.Flags & ClientInfoFlags.AutoLogon) == 0
            || pdu.Packet.Extended?.AutoReconnectCookie is { Length: not 0 })
        {
            throw new OracleViolationException("rewritten frame does not carry the new credentials");
        }

        if (!X224Data.TryUnwrapFrame(buffer.WrittenSpan, out _, out _))
        {
            throw new OracleViolationException("rewritten frame has bad framing");
        }
    }
}
