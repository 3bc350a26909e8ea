using System.Buffers;
using Gatehouse.Protocol.Mcs;
using Gatehouse.Protocol.X224;

namespace Gatehouse.Fuzz.Corpus;

/// <summary>
/// Connection sequences for the <c>connection-sequence</c> target, from the FreeRDP 3 to xrdp capture. A script is a
/// mode byte (<see cref="SignInRules"/>, <see cref="ClientInfoRelayed"/>, <see cref="HoldClientInfo"/>), then PDUs, each
/// as a direction byte (low bit: 0 client to host, 1 host to client) followed by one whole TPKT or fast-path frame.
/// </summary>
public static class ConnectionSequenceCorpus
{
    /// <summary>Direction byte: from the client.</summary>
    public const byte FromClient = 0;

    /// <summary>Direction byte: from the host.</summary>
    public const byte FromHost = 1;

    /// <summary>Mode bit: the TLS sign-in's rules for the MCS phase.</summary>
    public const byte SignInRules = 1;

    /// <summary>Mode bit: the sequence starts after the Client Info PDU (the relay after a TLS sign-in).</summary>
    public const byte ClientInfoRelayed = 2;

    /// <summary>Mode bit: no account to inject, so the Client Info PDU is held.</summary>
    public const byte HoldClientInfo = 4;

    /// <summary>The MCS phase up to (and with) the Client Info PDU, as the client and the host sent it.</summary>
    public static (byte Direction, byte[] Frame)[] McsPhase =>
    [
        (FromClient, Capture("c2s-001-mcs-connect-initial.bin")),
        (FromHost, Capture("s2c-001-mcs-connect-response.bin")),
        (FromClient, Capture("c2s-002-mcs-erect-domain.bin")),
        (FromClient, Capture("c2s-003-mcs-attach-user-request.bin")),
        (FromHost, Capture("s2c-002-mcs-attach-user-confirm.bin")),
        (FromClient, Capture("c2s-004-mcs-channel-join-request.bin")),
        (FromHost, Capture("s2c-003-mcs-channel-join-confirm.bin")),
        (FromClient, Capture("c2s-010-client-info.bin")),
    ];

    /// <summary>From licensing to the first PDUs of the session.</summary>
    public static (byte Direction, byte[] Frame)[] AfterClientInfo =>
    [
        (FromHost, Capture("s2c-010-license-error.bin")),
        (FromHost, Capture("s2c-011-demand-active.bin")),
        (FromClient, Capture("c2s-017-fastpath-input.bin")),
        (FromHost, Capture("s2c-016-fastpath-update.bin")),
        (FromClient, Capture("c2s-021-share-data.bin")),
        (FromHost, Capture("s2c-017-share-data.bin")),
    ];

    /// <summary>The whole captured sequence through the session relay (account injected).</summary>
    public static byte[] RelaySession => Script(0, [.. McsPhase, .. AfterClientInfo]);

    /// <summary>The TLS sign-in's MCS phase: its rules, the Client Info PDU held.</summary>
    public static byte[] SignInMcsPhase => Script(SignInRules | HoldClientInfo, McsPhase);

    /// <summary>The relay after a TLS sign-in, with a Server Redirection PDU from the host before the Demand Active PDU.</summary>
    public static byte[] RedirectionAfterSignIn => Script(ClientInfoRelayed, [(FromHost, Capture("s2c-010-license-error.bin")), (FromHost, IndicationFrame(ClientInfoCorpus.EnhancedRedirection)), .. AfterClientInfo]);

    /// <summary>The sign-in's rules with a Send Data Request before the Client Info PDU, then a Disconnect Provider Ultimatum.</summary>
    public static byte[] SignInSendDataFirst => Script(SignInRules, [.. McsPhase[..2], (FromClient, ClientInfoCorpus.CapturedSendDataLongForm), (FromClient, DataFrame(ClientInfoCorpus.DisconnectUserRequested))]);

    /// <summary>Builds a script.</summary>
    public static byte[] Script(int mode, (byte Direction, byte[] Frame)[] pdus)
    {
        var output = new ArrayBufferWriter<byte>();
        output.Write([(byte)mode]);
        foreach (var (direction, frame) in pdus)
        {
            output.Write([direction]);
            output.Write(frame);
        }

        return output.WrittenSpan.ToArray();
    }

    /// <summary>An MCS PDU in TPKT and X.224 Data.</summary>
    public static byte[] DataFrame(byte[] mcs)
    {
        var frame = new byte[X224Data.FrameOverhead + mcs.Length];
        X224Data.WriteFrameHeader(frame, frame.Length);
        mcs.CopyTo(frame, X224Data.FrameOverhead);
        return frame;
    }

    /// <summary>Share-level user data in a Send Data Indication from the host.</summary>
    public static byte[] IndicationFrame(byte[] userData)
    {
        var mcs = McsSendData.Create(DomainMcsPduType.SendDataIndication, 1002, 1003, userData.Length);
        var body = new ArrayBufferWriter<byte>();
        mcs.Write(body, userData);
        return DataFrame(body.WrittenSpan.ToArray());
    }

    private static byte[] Capture(string name) =>
        File.ReadAllBytes(Path.Combine(RepoPaths.FindRoot() ?? throw new InvalidOperationException("Gatehouse.slnx not found."), "testdata", "captures", "freerdp3-xrdp-tls", name));
}
