using System.Security.Authentication;
using Gatehouse.Gateway.Backend;
using Gatehouse.Gateway.Sessions;

namespace Gatehouse.Gateway.SignIn;

/// <summary>What the client leg's TLS established, published on the connection once the handshake is done.</summary>
/// <param name="ServerName">The server name the client asked for (SNI), when it sent one.</param>
/// <param name="ServerPublicKey">The SubjectPublicKey of the certificate the client saw (CredSSP binds to it).</param>
/// <param name="Protocol">The TLS version.</param>
public sealed record TlsFacts(string? ServerName, ReadOnlyMemory<byte> ServerPublicKey, SslProtocols Protocol);

/// <summary>
/// A sign-in method on the client leg (RDS AAD Auth for web accounts, CredSSP for NLA, the Client Info PDU for TLS).
/// It only proves who the client is and answers the outcome in its own protocol; the session driver authorises, opens
/// the host leg, records the session, writes the sign-in log and relays. Register one per <see cref="SignInMethods"/>
/// value as a singleton; each connection gets its own <see cref="ISignInAttempt"/>.
/// </summary>
public interface ISignInMethod
{
    /// <summary>The method this implements (the X.224 negotiation picks it).</summary>
    SignInMethods Method { get; }

    /// <summary>The protocol name in the sign-in log and the session records (<c>web_account</c>, <c>nla</c>, <c>tls</c>).</summary>
    string ProtocolName { get; }

    /// <summary>
    /// True when the access engine's refusals are logged as <c>authorization: reason</c> (the password methods, whose own
    /// refusals use some of the same codes); false to log the engine's reason as it is.
    /// </summary>
    bool QualifiesAccessRefusals { get; }

    /// <summary>
    /// What the hold screen may do after this method's proof: after a <see cref="SignInOutcome.Proceed"/> answer the
    /// client's next bytes are its MCS Connect Initial on the same stream, so the gateway can answer them with its own
    /// front. A use that ends in a handover also needs the reconnect to prove the same user again without the user's
    /// help (NLA reuses the password; a web-account client would go through the browser again), so web accounts get
    /// readable refusals only. TLS sign-ins are held from the start instead (<c>HoldPhase.RunTlsSignInAsync</c>).
    /// </summary>
    HoldUses HoldUses { get; }

    /// <summary>Starts the sign-in of one connection over its TLS stream.</summary>
    ISignInAttempt Begin(GatewayConnection connection, Stream client);
}

/// <summary>What the hold screen may do for a sign-in method (<see cref="ISignInMethod.HoldUses"/>).</summary>
[Flags]
public enum HoldUses
{
    /// <summary>Nothing: refusals are answered inside the method's protocol.</summary>
    None = 0,

    /// <summary>A readable refusal screen after the proof (then disconnect).</summary>
    Refusals = 1,

    /// <summary>The one-time code prompt when a policy MFA would satisfy (then a handover).</summary>
    StepUpMfa = 2,

    /// <summary>The host picker when the client named no registered host (then a handover).</summary>
    HostPicker = 4,

    /// <summary>Every use.</summary>
    All = Refusals | StepUpMfa | HostPicker,
}

/// <summary>One connection's sign-in: prove, then answer; disposing wipes what it holds (passwords, a held host leg).</summary>
public interface ISignInAttempt : IAsyncDisposable
{
    /// <summary>Who the client has named so far (the driver logs it when the attempt ends without a decision).</summary>
    SignInSubject Subject { get; }

    /// <summary>
    /// Reads the client's proof (within the method's own deadlines) and checks it with the directory: who the client is,
    /// the host it asks for and how it signed in, or a typed refusal, or that the client left. Never touches the session
    /// registry, the journal or the sign-in log.
    /// </summary>
    Task<SignInProof> ProveAsync(CancellationToken clientClosed);

    /// <summary>
    /// Last check before an allowed sign-in is logged: null when the answer can be given with <paramref name="grant"/>,
    /// else the refusal (the TLS sign-in rewrites the held Client Info PDU with the grant's account here).
    /// </summary>
    SignInRefusal? PrepareAnswer(SessionGrant grant);

    /// <summary>The code the client will be sent for <paramref name="outcome"/> (for the sign-in log, written before the answer).</summary>
    string? AnswerCode(SignInOutcome outcome);

    /// <summary>Tells the client the outcome in its own protocol (the sign-in log entry is written already).</summary>
    Task AnswerAsync(SignInOutcome outcome, CancellationToken clientClosed);
}

/// <summary>Who a proof names, as far as the method got: for the authorisation when proven, for the sign-in log always.</summary>
public sealed record SignInSubject
{
    /// <summary>Nobody named yet.</summary>
    public static SignInSubject Nobody { get; } = new();

    /// <summary>Tenant, when known.</summary>
    public Guid? TenantId { get; init; }

    /// <summary>User, when known.</summary>
    public Guid? UserId { get; init; }

    /// <summary>The user's name: as the directory knows it once found, else as typed.</summary>
    public string? UserPrincipalName { get; init; }

    /// <summary>The host, when the proof resolved it (a web-account assertion names it).</summary>
    public Guid? HostId { get; init; }

    /// <summary>The host's name (resolved) or label (as asked), when known.</summary>
    public string? HostName { get; init; }

    /// <summary>The label the client asked for (authorisation resolves it in the user's tenant when <see cref="HostId"/> is not set).</summary>
    public string? HostLabel { get; init; }

    /// <summary>How the user authenticated (amr).</summary>
    public IReadOnlyList<string> Methods { get; init; } = [];

    /// <summary>When the user authenticated.</summary>
    public DateTimeOffset AuthenticatedAt { get; init; }

    /// <summary>True once the client has named a user: from then on every end of the attempt leaves a sign-in log entry.</summary>
    public bool Named => UserPrincipalName is not null;
}

/// <summary>What a sign-in method proved.</summary>
public sealed record SignInProof
{
    private SignInProof(SignInSubject subject) => Subject = subject;

    /// <summary>Who (as far as known).</summary>
    public SignInSubject Subject { get; }

    /// <summary>The refusal, when the method refused.</summary>
    public SignInRefusal? Refusal { get; private init; }

    /// <summary>Set when the client left (or the read failed) before a decision: the reason for the log, if the client named someone.</summary>
    public string? Unfinished { get; private init; }

    /// <summary>
    /// A host leg the method opened before it knew the user (the TLS sign-in relays the host's MCS phase before the Client
    /// Info PDU); the driver owns it from here and the relay continues after the connection sequence.
    /// </summary>
    public EarlyHostLeg? HostLeg { get; init; }

    /// <summary>True when the client is proven: authorise it.</summary>
    public bool Proven => Refusal is null && Unfinished is null;

    /// <summary>The client is who <paramref name="subject"/> says.</summary>
    public static SignInProof Of(SignInSubject subject) => new(subject);

    /// <summary>Refused by the method.</summary>
    public static SignInProof Refused(SignInSubject subject, SignInRefusal refusal) => new(subject) { Refusal = refusal };

    /// <summary>Ended without a decision (the client left, the read failed).</summary>
    public static SignInProof Left(SignInSubject subject, string reason) => new(subject) { Unfinished = reason };
}

/// <summary>A host leg opened by the sign-in method itself, with the host it was opened to.</summary>
/// <param name="HostId">The host.</param>
/// <param name="Connection">The connected, relayed-up-to-Client-Info leg.</param>
/// <param name="Target">Where it goes (the grant must name the same).</param>
public sealed record EarlyHostLeg(Guid HostId, BackendConnection Connection, BackendTarget Target);

/// <summary>The outcome the method answers: allowed with the session, or refused.</summary>
public sealed record SignInOutcome
{
    private SignInOutcome()
    {
    }

    /// <summary>The refusal, when refused.</summary>
    public SignInRefusal? Refusal { get; private init; }

    /// <summary>The grant, when allowed.</summary>
    public SessionGrant? Grant { get; private init; }

    /// <summary>The session the client is let into (null when the authoriser allowed without a grant).</summary>
    public LiveSession? Session { get; private init; }

    /// <summary>True when allowed.</summary>
    public bool Allowed => Refusal is null;

    /// <summary>
    /// The client may go on to the connection sequence, which the gateway's hold screen answers (the sign-in continues
    /// there: a second factor, or a readable refusal). The method answers it as it answers an allowed sign-in.
    /// </summary>
    public bool Held { get; private init; }

    /// <summary>Allowed.</summary>
    public static SignInOutcome Allow(SessionGrant? grant, LiveSession? session) => new() { Grant = grant, Session = session };

    /// <summary>The client proceeds to the hold screen (no session).</summary>
    public static SignInOutcome Proceed { get; } = new() { Held = true };

    /// <summary>Refused.</summary>
    public static SignInOutcome Refuse(SignInRefusal refusal) => new() { Refusal = refusal };
}

/// <summary>The access decision for a proven subject (Gatehouse.Identity implements it over its access service).</summary>
public interface ISignInAuthorizer
{
    /// <summary>Roles and Conditional Access for <paramref name="subject"/> on the host it names; an allowed answer carries the grant.</summary>
    Task<AccessOutcome> AuthorizeAsync(GatewayConnection connection, SignInSubject subject, CancellationToken cancellationToken);
}

/// <summary>An access decision: allowed with the grant, or the typed refusal with the engine's reason, sentence and fix.</summary>
public sealed record AccessOutcome
{
    /// <summary>The refusal (null when allowed).</summary>
    public SignInRefusal? Refusal { get; init; }

    /// <summary>True when allowed.</summary>
    public bool Allowed => Refusal is null;

    /// <summary>Why it was allowed, in words (the log's reason when allowed).</summary>
    public string Reason { get; init; } = string.Empty;

    /// <summary>What the sign-in grants (null when refused, or when a test authorises without a session).</summary>
    public SessionGrant? Grant { get; init; }

    /// <summary>The user, when known.</summary>
    public Guid? UserId { get; init; }

    /// <summary>The tenant, when known.</summary>
    public Guid? TenantId { get; init; }

    /// <summary>Each policy's outcome (JSON).</summary>
    public string? PoliciesJson { get; init; }

    /// <summary>True when the refusal is a policy that a second factor would satisfy (the hold screen can ask for it).</summary>
    public bool MfaWouldSatisfy { get; init; }

    /// <summary>The host the decision is about, when it was resolved.</summary>
    public Guid? HostId { get; init; }

    /// <summary>True when the refusal is that the host the client named is not registered (the host picker can offer one).</summary>
    public bool HostUnknown { get; init; }

    /// <summary>Allowed.</summary>
    public static AccessOutcome Allow(string reason, SessionGrant? grant) => new() { Reason = reason, Grant = grant };

    /// <summary>Refused.</summary>
    public static AccessOutcome Deny(SignInFailure failure, string reason, string? userMessage = null, string? fix = null) =>
        new() { Refusal = new SignInRefusal(failure, reason) { UserMessage = userMessage, Fix = fix } };
}
