using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;
using Gatehouse.Protocol.CredSsp;

namespace Gatehouse.Protocol.Spnego;

/// <summary>[RFC 4178] 4.2.2 negState of a NegTokenResp.</summary>
public enum NegState
{
    /// <summary>accept-completed.</summary>
    AcceptCompleted = 0,

    /// <summary>accept-incomplete.</summary>
    AcceptIncomplete = 1,

    /// <summary>reject.</summary>
    Reject = 2,

    /// <summary>request-mic.</summary>
    RequestMic = 3,
}

/// <summary>
/// [RFC 4178] SPNEGO tokens as CredSSP carries them ([MS-SPNG]): the initiator's NegTokenInit (inside the GSS-API
/// InitialContextToken with OID 1.3.6.1.5.5.2) and NegTokenResp in both directions. Gatehouse negotiates NTLM only.
/// </summary>
public sealed class SpnegoToken
{
    /// <summary>The SPNEGO mechanism OID.</summary>
    public const string SpnegoOid = "1.3.6.1.5.5.2";

    /// <summary>The NTLMSSP mechanism OID.</summary>
    public const string NtlmOid = "1.3.6.1.4.1.311.2.2.10";

    /// <summary>Most mechanisms accepted in mechTypes.</summary>
    public const int MaxMechTypes = 16;

    private const string Pdu = "SPNEGO";
    private static readonly Asn1Tag Application0 = new(TagClass.Application, 0, true);
    private readonly byte[]? _mechToken;
    private readonly byte[]? _mechListMic;
    private readonly byte[]? _mechTypesDer;

    private SpnegoToken(bool isInit, IReadOnlyList<string> mechTypes, byte[]? mechTypesDer, NegState? state, string? supportedMech, byte[]? mechToken, byte[]? mechListMic)
    {
        IsInit = isInit;
        MechTypes = mechTypes;
        _mechTypesDer = mechTypesDer;
        State = state;
        SupportedMech = supportedMech;
        _mechToken = mechToken;
        _mechListMic = mechListMic;
    }

    /// <summary>True for a NegTokenInit, false for a NegTokenResp.</summary>
    public bool IsInit { get; }

    /// <summary>NegTokenInit mechTypes, in the initiator's order of preference.</summary>
    public IReadOnlyList<string> MechTypes { get; }

    /// <summary>The DER of the mechTypes list exactly as sent (the input of mechListMIC).</summary>
    public ReadOnlySpan<byte> MechTypesDer => _mechTypesDer;

    /// <summary>NegTokenResp negState, when present.</summary>
    public NegState? State { get; }

    /// <summary>NegTokenResp supportedMech, when present.</summary>
    public string? SupportedMech { get; }

    /// <summary>mechToken (init) or responseToken (resp): the inner NTLM message; empty when absent.</summary>
    public ReadOnlySpan<byte> MechToken => _mechToken;

    /// <summary>True when a mechanism token is present.</summary>
    public bool HasMechToken => _mechToken is not null;

    /// <summary>mechListMIC, when present.</summary>
    public ReadOnlySpan<byte> MechListMic => _mechListMic;

    /// <summary>True when mechListMIC is present.</summary>
    public bool HasMechListMic => _mechListMic is not null;

    /// <summary>True when <paramref name="token"/> starts like an SPNEGO token (0x60 or 0xA1) rather than raw NTLMSSP.</summary>
    public static bool LooksLikeSpnego(ReadOnlySpan<byte> token) => token.Length > 0 && token[0] is 0x60 or 0xA0 or 0xA1;

    /// <summary>Creates a NegTokenInit offering <paramref name="mechTypes"/> with an optional first token.</summary>
    public static SpnegoToken Init(IReadOnlyList<string> mechTypes, byte[]? mechToken)
    {
        ArgumentNullException.ThrowIfNull(mechTypes);
        return new SpnegoToken(true, mechTypes, EncodeMechTypes(mechTypes), null, null, mechToken, null);
    }

    /// <summary>Creates a NegTokenResp.</summary>
    public static SpnegoToken Response(NegState? state, string? supportedMech, byte[]? responseToken, byte[]? mechListMic) =>
        new(false, [], null, state, supportedMech, responseToken, mechListMic);

    /// <summary>The DER of a mechTypes list (what mechListMIC covers).</summary>
    public static byte[] EncodeMechTypes(IReadOnlyList<string> mechTypes)
    {
        ArgumentNullException.ThrowIfNull(mechTypes);
        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.PushSequence();
        foreach (var oid in mechTypes)
        {
            writer.WriteObjectIdentifier(oid);
        }

        writer.PopSequence();
        return writer.Encode();
    }

    /// <summary>Parses an InitialContextToken (NegTokenInit, or NegTokenResp) or a bare NegotiationToken.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out SpnegoToken value, out PduError? error)
    {
        value = null;
        if (source.Length > TsRequest.MaxSize)
        {
            error = PduError.TooLarge(Pdu, "token", source.Length, TsRequest.MaxSize);
            return false;
        }

        if (source.IsEmpty)
        {
            error = PduError.NotEnough(Pdu, "token", 2, 0);
            return false;
        }

        try
        {
            // DER is what Windows and FreeRDP send; BER would also allow indefinite lengths we do not want.
            var reader = new AsnReader(source.ToArray(), AsnEncodingRules.DER);
            AsnReader choiceReader = reader;
            if (reader.PeekTag().HasSameClassAndValue(Application0))
            {
                var gss = reader.ReadSequence(Application0);
                reader.ThrowIfNotEmpty();
                var oid = gss.ReadObjectIdentifier();
                if (oid != SpnegoOid)
                {
                    error = PduError.Unsupported(Pdu, "thisMech", $"mechanism {oid} (expected SPNEGO {SpnegoOid})");
                    return false;
                }

                choiceReader = gss;
            }

            var tag = choiceReader.PeekTag();
            if (tag.HasSameClassAndValue(Der.Context(0)))
            {
                value = ReadInit(choiceReader.ReadSequence(Der.Context(0)).ReadSequence());
            }
            else if (tag.HasSameClassAndValue(Der.Context(1)))
            {
                value = ReadResp(choiceReader.ReadSequence(Der.Context(1)).ReadSequence());
            }
            else
            {
                error = PduError.Unexpected(Pdu, "NegotiationToken", $"tag {tag} is neither negTokenInit [0] nor negTokenResp [1]");
                return false;
            }

            choiceReader.ThrowIfNotEmpty();
            reader.ThrowIfNotEmpty();
            error = null;
            return true;
        }
        catch (LimitException e)
        {
            error = e.Error;
            return false;
        }
        catch (AsnContentException e)
        {
            error = Der.Error(Pdu, "token", e);
            return false;
        }
    }

    /// <summary>
    /// The DER encoding: a NegTokenInit wrapped in the InitialContextToken, a NegTokenResp bare (as [RFC 4178] 4.2
    /// and Windows send them).
    /// </summary>
    public byte[] Encode()
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        if (IsInit)
        {
            writer.PushSequence(Application0);
            writer.WriteObjectIdentifier(SpnegoOid);
            writer.PushSequence(Der.Context(0));
            writer.PushSequence();
            writer.PushSequence(Der.Context(0));
            writer.WriteEncodedValue(_mechTypesDer);
            writer.PopSequence(Der.Context(0));
            if (_mechToken is not null)
            {
                Der.WriteExplicitOctets(writer, 2, _mechToken);
            }

            if (_mechListMic is not null)
            {
                Der.WriteExplicitOctets(writer, 3, _mechListMic);
            }

            writer.PopSequence();
            writer.PopSequence(Der.Context(0));
            writer.PopSequence(Application0);
            return writer.Encode();
        }

        writer.PushSequence(Der.Context(1));
        writer.PushSequence();
        if (State is { } state)
        {
            writer.PushSequence(Der.Context(0));
            writer.WriteEnumeratedValue(state);
            writer.PopSequence(Der.Context(0));
        }

        if (SupportedMech is { } mech)
        {
            writer.PushSequence(Der.Context(1));
            writer.WriteObjectIdentifier(mech);
            writer.PopSequence(Der.Context(1));
        }

        if (_mechToken is not null)
        {
            Der.WriteExplicitOctets(writer, 2, _mechToken);
        }

        if (_mechListMic is not null)
        {
            Der.WriteExplicitOctets(writer, 3, _mechListMic);
        }

        writer.PopSequence();
        writer.PopSequence(Der.Context(1));
        return writer.Encode();
    }

    private static SpnegoToken ReadInit(AsnReader sequence)
    {
        var mechTypesReader = sequence.ReadSequence(Der.Context(0));
        var mechTypesDer = mechTypesReader.ReadEncodedValue().ToArray();
        mechTypesReader.ThrowIfNotEmpty();
        var list = new AsnReader(mechTypesDer, AsnEncodingRules.DER).ReadSequence();
        var mechTypes = new List<string>();
        while (list.HasData)
        {
            if (mechTypes.Count == MaxMechTypes)
            {
                throw new LimitException(PduError.TooLarge(Pdu, "mechTypes", mechTypes.Count + 1, MaxMechTypes));
            }

            mechTypes.Add(list.ReadObjectIdentifier());
        }

        if (Der.IsNext(sequence, 1))
        {
            sequence.ReadSequence(Der.Context(1)).ReadBitString(out _);
        }

        var mechToken = Der.IsNext(sequence, 2) ? Der.ReadExplicitOctets(sequence, 2, TsRequest.MaxSize, Pdu, "mechToken") : null;
        var mic = Der.IsNext(sequence, 3) ? Der.ReadExplicitOctets(sequence, 3, TsRequest.MaxSize, Pdu, "mechListMIC") : null;
        sequence.ThrowIfNotEmpty();
        return new SpnegoToken(true, mechTypes, mechTypesDer, null, null, mechToken, mic);
    }

    private static SpnegoToken ReadResp(AsnReader sequence)
    {
        NegState? state = null;
        if (Der.IsNext(sequence, 0))
        {
            var inner = sequence.ReadSequence(Der.Context(0));
            var raw = inner.ReadEnumeratedValue<NegState>();
            inner.ThrowIfNotEmpty();
            if (raw is < NegState.AcceptCompleted or > NegState.RequestMic)
            {
                throw new LimitException(PduError.Invalid(Pdu, "negState", $"{(int)raw} is not a negState"));
            }

            state = raw;
        }

        string? mech = null;
        if (Der.IsNext(sequence, 1))
        {
            var inner = sequence.ReadSequence(Der.Context(1));
            mech = inner.ReadObjectIdentifier();
            inner.ThrowIfNotEmpty();
        }

        var token = Der.IsNext(sequence, 2) ? Der.ReadExplicitOctets(sequence, 2, TsRequest.MaxSize, Pdu, "responseToken") : null;
        var mic = Der.IsNext(sequence, 3) ? Der.ReadExplicitOctets(sequence, 3, TsRequest.MaxSize, Pdu, "mechListMIC") : null;
        sequence.ThrowIfNotEmpty();
        return new SpnegoToken(false, [], null, state, mech, token, mic);
    }
}
