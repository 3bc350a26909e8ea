using Gatehouse.Access;
using Gatehouse.Identity;

namespace Gatehouse.Idp;

/// <summary>
/// <c>POST /{tenant}/oauth2/v2.0/token</c>: <c>authorization_code</c> (single use, PKCE, PoP-bound through
/// <c>req_cnf</c>), <c>refresh_token</c> (rotated) and <c>srv_challenge</c> (a self-validating server nonce); for the
/// Gatehouse CLI, <c>urn:ietf:params:oauth:grant-type:device_code</c> (RFC 8628 §3.4–3.5; also as Entra's short
/// <c>device_code</c>, which msal-node sends) and <c>refresh_token</c>, both answered with an admin API bearer token (no
/// PoP) and a rotated refresh token, plus an ID token when <c>openid</c> was asked for and <c>client_info</c> for
/// <c>client_info=1</c> (what Microsoft's MSAL libraries build their account from). An unknown <c>client_id</c> is
/// AADSTS700016 (not a complaint about a missing <c>req_cnf</c>).
/// The RDP client is public: no client secret. Responses are JSON with Content-Length (FreeRDP reads no chunks).
/// </summary>
internal sealed class TokenEndpoint(
    IServiceProvider services,
    CodeRedemption redemption,
    GatehouseIdentityOptions identityOptions,
    IdpSignInLog log,
    IdpUrls urls,
    IdpDocumentCache documents,
    TimeProvider time)
{
    // The request's scoped services, each resolved when a grant first needs it: a code redemption on PostgreSQL needs
    // none of them (CodeRedemption's statement on a pooled connection), so it creates no DbContext and none of the
    // services over one; the other grants resolve what they use.
    private DirectoryService? directory;
    private AuthorizationCodeService? codes;
    private RefreshTokenService? refreshTokens;
    private TokenService? tokens;

    private DirectoryService Directory => directory ??= services.GetRequiredService<DirectoryService>();

    private AuthorizationCodeService Codes => codes ??= services.GetRequiredService<AuthorizationCodeService>();

    private RefreshTokenService RefreshTokens => refreshTokens ??= services.GetRequiredService<RefreshTokenService>();

    private TokenService Tokens => tokens ??= services.GetRequiredService<TokenService>();

    private DeviceCodeService DeviceCodes => services.GetRequiredService<DeviceCodeService>();

    private AdminTokenService AdminTokens => services.GetRequiredService<AdminTokenService>();

    private ServerChallengeService Challenges => services.GetRequiredService<ServerChallengeService>();

    private AccessService Access => services.GetRequiredService<AccessService>();

    /// <summary>The device authorization grant's <c>grant_type</c> (RFC 8628 §3.4).</summary>
    public const string DeviceCodeGrant = "urn:ietf:params:oauth:grant-type:device_code";

    /// <summary>The short form of <see cref="DeviceCodeGrant"/> Entra also accepts, and msal-node polls with.</summary>
    public const string DeviceCodeGrantShort = "device_code";

    private static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromMinutes(60);

    public async Task PostAsync(HttpContext context, string tenant)
    {
        (Gatehouse.Storage.Tenant, IFormCollection)? read;
        using (IdpTelemetry.Source.StartActivity("gatehouse.idp.token.read_form"))
        {
            read = await OAuthForm.ReadAsync(context, () => Directory, tenant, documents).ConfigureAwait(false);
        }

        if (read is not (var requestTenant, var form))
        {
            return;
        }

        var grantType = OAuthForm.Single(form, "grant_type");
        IdpTelemetry.GrantType(grantType);
        switch (grantType)
        {
            case "srv_challenge":
                var nonce = await Challenges.IssueAsync(time.GetUtcNow()).ConfigureAwait(false);
                await Responses.JsonAsync(context, StatusCodes.Status200OK, w =>
                {
                    w.WriteStartObject();
                    w.WriteString("Nonce", nonce);
                    w.WriteEndObject();
                }).ConfigureAwait(false);
                return;
            case "authorization_code":
                await RedeemCodeAsync(context, form, requestTenant).ConfigureAwait(false);
                return;
            case "refresh_token" when GatehouseCliClient.Is(OAuthForm.Single(form, "client_id")):
                await RefreshAdminAsync(context, form).ConfigureAwait(false);
                return;
            case "refresh_token":
                await RefreshAsync(context, form).ConfigureAwait(false);
                return;
            case DeviceCodeGrant or DeviceCodeGrantShort:
                await RedeemDeviceCodeAsync(context, form).ConfigureAwait(false);
                return;
            case null:
                await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With("grant_type")).ConfigureAwait(false);
                return;
            default:
                await Responses.OAuthErrorAsync(context, AadError.UnsupportedGrant).ConfigureAwait(false);
                return;
        }
    }

    private async Task RedeemCodeAsync(HttpContext context, IFormCollection form, Gatehouse.Storage.Tenant requestTenant)
    {
        // FreeRDP pastes the code unencoded from a line it read with the newline kept: strip CR/LF.
        var code = OAuthForm.Single(form, "code")?.Replace("\r", string.Empty, StringComparison.Ordinal).Replace("\n", string.Empty, StringComparison.Ordinal);
        var clientId = OAuthForm.Single(form, "client_id");
        var redirectUri = OAuthForm.Single(form, "redirect_uri");
        foreach (var (name, value) in new[] { ("code", code), ("client_id", clientId), ("redirect_uri", redirectUri) })
        {
            if (string.IsNullOrEmpty(value))
            {
                await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With(name)).ConfigureAwait(false);
                return;
            }
        }

        if (GatehousePortalClient.Is(clientId))
        {
            await RedeemPortalCodeAsync(context, code!, redirectUri!, OAuthForm.Single(form, "code_verifier")).ConfigureAwait(false);
            return;
        }

        if (!RdpClient.Is(clientId))
        {
            // Only the RDP and portal clients sign in through /authorize; the Gatehouse CLI uses the device code grant.
            await Responses.OAuthErrorAsync(context, GatehouseCliClient.Is(clientId) ? AadError.UnsupportedGrant : AadError.UnknownClient).ConfigureAwait(false);
            return;
        }

        if (!TryPopKey(form, out var thumbprint, out var popError))
        {
            await Responses.OAuthErrorAsync(context, popError).ConfigureAwait(false);
            return;
        }

        var now = time.GetUtcNow();
        if (redemption.IsAvailable && await TryRedeemInOneStatementAsync(context, code!, clientId!, redirectUri!, OAuthForm.Single(form, "code_verifier"), thumbprint, now, requestTenant).ConfigureAwait(false))
        {
            return;
        }

        RedeemResult redeemed;
        using (IdpTelemetry.Source.StartActivity("gatehouse.idp.token.consume_code"))
        {
            redeemed = await Codes.RedeemAsync(code!, clientId!, redirectUri!, OAuthForm.Single(form, "code_verifier"), now).ConfigureAwait(false);
        }

        if (!redeemed.Success)
        {
            await Responses.OAuthErrorAsync(context, new AadError(redeemed.ErrorCode, redeemed.Error ?? "invalid_grant", StripCode(redeemed.ErrorDescription) ?? AadError.CodeInvalid.Message)).ConfigureAwait(false);
            return;
        }

        var c = redeemed.Code!;

        // The code's sign-in trace continues here (from the code's row: any node can redeem it).
        using var redeeming = Gatehouse.Gateway.Diagnostics.SignInTraces.Continue(IdpTelemetry.Source, "gatehouse.idp.code_redemption", c.TraceParent);
        await IssueAsync(context, new GrantInfo(c.GrantId, c.UserId, c.HostId, c.ClientId, c.Scope, c.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries), c.AuthTime, redeemed.GrantCreatedAt), thumbprint, now, requestTenant: requestTenant).ConfigureAwait(false);
    }

    /// <summary>
    /// The RDP client's redemption on PostgreSQL (<see cref="CodeRedemption"/>): one statement on a pooled connection
    /// consumes the code and records the access token's id and the refresh token, then the token is signed with the
    /// signing key this process keeps; no DbContext and no scoped service is created unless the key must be read again,
    /// or the request's tenant is not the user's. False when the statement consumed nothing (unknown, reused, expired,
    /// another client's, another redirect URI, a verifier that does not match, a revoked grant, a malformed code or
    /// verifier): the general path then answers as it always has, and revokes the grant of a reused code.
    /// </summary>
    private async Task<bool> TryRedeemInOneStatementAsync(HttpContext context, string code, string clientId, string redirectUri, string? verifier, string thumbprint, DateTimeOffset now, Gatehouse.Storage.Tenant requestTenant)
    {
        var jti = TokenService.NewJti();
        var refreshToken = Base64Url.Encode(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        CodeRedemptionResult? done;
        using (IdpTelemetry.Source.StartActivity("gatehouse.idp.token.consume_code"))
        {
            done = await redemption.TryRedeemAsync(new CodeRedemptionRequest
            {
                Code = code,
                ClientId = clientId,
                RedirectUri = redirectUri,
                CodeVerifier = verifier,
                Now = now,
                Jti = jti,
                AccessTokenExpiresAt = now + AccessTokenLifetime,
                RefreshToken = refreshToken,
            }, context.RequestAborted).ConfigureAwait(false);
        }

        if (done is null)
        {
            return false;
        }

        var c = done.Code;
        using var redeeming = Gatehouse.Gateway.Diagnostics.SignInTraces.Continue(IdpTelemetry.Source, "gatehouse.idp.code_redemption", c.TraceParent);
        var grant = new GrantInfo(c.GrantId, c.UserId, c.HostId, c.ClientId, c.Scope, c.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries), c.AuthTime, done.GrantCreatedAt);
        if (!done.TokensRecorded || done.User is not { } user || done.Host is not { } host)
        {
            // The code is spent but nothing was issued (a disabled or deleted user, a deleted host, a host of another
            // tenant): the general issuing path gives its answer from what the statement read.
            await IssueAsync(context, grant, thumbprint, now, requestTenant: requestTenant, directoryRead: (done.User, done.Host)).ConfigureAwait(false);
            return true;
        }

        var tenant = requestTenant.Id == user.TenantId
            ? requestTenant
            : await Directory.FindTenantAsync(user.TenantId.ToString("D")).ConfigureAwait(false);
        var credentials = SigningKeyService.TryGetKeptActive(redemption.StoreKey!, now)
            ?? await services.GetRequiredService<SigningKeyService>().GetActiveAsync(context.RequestAborted).ConfigureAwait(false);
        var accessToken = TokenService.CreateRdpAccessToken(AccessTokenRequest(grant, tenant!, user, host, thumbprint), credentials, identityOptions, now, jti);
        using var writing = IdpTelemetry.Source.StartActivity("gatehouse.idp.token.response");
        await WriteTokensAsync(context, "pop", grant.Scope, AccessTokenLifetime, accessToken, refreshToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// The portal's code (<see cref="GatehousePortalClient"/>): single use, PKCE required (the code was issued only with
    /// an S256 challenge), no <c>req_cnf</c>; the answer is an ID token for the portal (no access or refresh token: the
    /// portal keeps its own cookie session and calls the admin operations in process).
    /// </summary>
    private async Task RedeemPortalCodeAsync(HttpContext context, string code, string redirectUri, string? verifier)
    {
        if (string.IsNullOrEmpty(verifier))
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With("code_verifier")).ConfigureAwait(false);
            return;
        }

        var redeemed = await Codes.RedeemAsync(code, GatehousePortalClient.ClientId, redirectUri, verifier, time.GetUtcNow()).ConfigureAwait(false);
        if (!redeemed.Success)
        {
            await Responses.OAuthErrorAsync(context, new AadError(redeemed.ErrorCode, redeemed.Error ?? "invalid_grant", StripCode(redeemed.ErrorDescription) ?? AadError.CodeInvalid.Message)).ConfigureAwait(false);
            return;
        }

        var user = await Directory.FindUserAsync(redeemed.Code!.UserId).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            await Responses.OAuthErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
            return;
        }

        var idToken = await Tokens.IssueIdTokenAsync(new IdTokenRequest
        {
            User = user,
            ClientId = GatehousePortalClient.ClientId,
            Issuer = urls.Issuer(user.TenantId),
            Amr = redeemed.Code.Amr.Split(' ', StringSplitOptions.RemoveEmptyEntries),
            AuthTime = redeemed.Code.AuthTime,
        }, context.RequestAborted).ConfigureAwait(false);
        var expiresIn = (int)OidcClaims.IdTokenLifetime.TotalSeconds - 1;
        await Responses.JsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteString("token_type", "Bearer");
            w.WriteString("scope", redeemed.Code.Scope);
            w.WriteNumber("expires_in", expiresIn);
            w.WriteString("id_token", idToken);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private async Task RefreshAsync(HttpContext context, IFormCollection form)
    {
        var refreshToken = OAuthForm.Single(form, "refresh_token");
        var clientId = OAuthForm.Single(form, "client_id");
        if (string.IsNullOrEmpty(refreshToken) || string.IsNullOrEmpty(clientId))
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With(string.IsNullOrEmpty(refreshToken) ? "refresh_token" : "client_id")).ConfigureAwait(false);
            return;
        }

        if (!RdpClient.Is(clientId))
        {
            // The Gatehouse CLI's refresh went to RefreshAdminAsync: any other id is unknown.
            await Responses.OAuthErrorAsync(context, AadError.UnknownClient).ConfigureAwait(false);
            return;
        }

        if (!TryPopKey(form, out var thumbprint, out var popError))
        {
            await Responses.OAuthErrorAsync(context, popError).ConfigureAwait(false);
            return;
        }

        var now = time.GetUtcNow();
        var rotated = await RefreshTokens.RotateAsync(refreshToken, clientId, now).ConfigureAwait(false);
        if (!rotated.Success)
        {
            await Responses.OAuthErrorAsync(context, AadError.RefreshTokenInvalid).ConfigureAwait(false);
            return;
        }

        var previous = rotated.Previous!;
        var user = await Directory.FindUserAsync(previous.UserId).ConfigureAwait(false);
        Guid? hostId = null;
        if (user is not null && RdpScope.TryParse(previous.Scope, out var label, out _)
            && await Directory.FindHostByLabelAsync(user.TenantId, label).ConfigureAwait(false) is { } host)
        {
            hostId = host.Id;
        }

        // A refresh proves only the password sign-in of the grant; MFA has to be done again interactively. auth_time is
        // the grant's sign-in, not this rotation.
        await IssueAsync(context, new GrantInfo(previous.GrantId, previous.UserId, hostId, previous.ClientId, previous.Scope, ["pwd"], rotated.SignedInAt), thumbprint, now, rotated.NewToken).ConfigureAwait(false);
    }

    /// <summary>One poll of <c>gatehouse login</c>: the RFC 8628 §3.5 errors until the user has answered, then the tokens, once.</summary>
    private async Task RedeemDeviceCodeAsync(HttpContext context, IFormCollection form)
    {
        var deviceCode = OAuthForm.Single(form, "device_code");
        var clientId = OAuthForm.Single(form, "client_id");
        if (deviceCode is null || clientId is null)
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With(deviceCode is null ? "device_code" : "client_id")).ConfigureAwait(false);
            return;
        }

        if (!GatehouseCliClient.Is(clientId))
        {
            await Responses.OAuthErrorAsync(context, AadError.UnknownClient).ConfigureAwait(false);
            return;
        }

        var poll = await DeviceCodes.PollAsync(deviceCode, clientId, context.RequestAborted).ConfigureAwait(false);
        var error = poll.Status switch
        {
            DevicePollStatus.Pending => AadError.DevicePending,
            DevicePollStatus.SlowDown => AadError.DeviceSlowDown,
            DevicePollStatus.Denied => AadError.DeviceDenied,
            DevicePollStatus.Expired => AadError.DeviceCodeExpired,
            DevicePollStatus.BadCode => AadError.BadDeviceCode,
            _ => null,
        };
        if (error is not null)
        {
            await Responses.OAuthErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        var approved = poll.Code!;
        var user = approved.UserId is { } userId ? await Directory.FindUserAsync(userId).ConfigureAwait(false) : null;
        if (user is null || !user.Enabled || user.TenantId != approved.TenantId)
        {
            await Responses.OAuthErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
            return;
        }

        var grantId = await RefreshTokens.CreateGrantAsync(user.Id, context.RequestAborted).ConfigureAwait(false);
        var amr = (approved.Amr ?? "pwd").Split(' ', StringSplitOptions.RemoveEmptyEntries);

        // The scope asked for at the devicecode endpoint decides the ID token; this request decides client_info.
        await IssueAdminAsync(context, user, amr, grantId, refreshToken: null, OidcClaims.RequestsOpenId(approved.Scope), WantsClientInfo(form)).ConfigureAwait(false);
    }

    /// <summary>
    /// The Gatehouse CLI's refresh: the token is rotated as every refresh token is (never past the grant's maximum
    /// lifetime), and the new admin API token carries <c>pwd</c> only (a refresh proves the sign-in, not a second factor,
    /// as for RDP tokens). No <c>req_cnf</c>. Conditional Access for the admin API runs again, as at the device sign-in,
    /// with what a refresh proves (<c>pwd</c>, the grant's sign-in time, this client's address): a refusal is
    /// <c>invalid_grant</c> with the AADSTS code, the grant is revoked, and the attempt goes to the sign-in log.
    /// </summary>
    private async Task RefreshAdminAsync(HttpContext context, IFormCollection form)
    {
        var refreshToken = OAuthForm.Single(form, "refresh_token");
        if (string.IsNullOrEmpty(refreshToken))
        {
            await Responses.OAuthErrorAsync(context, AadError.MissingParameter.With("refresh_token")).ConfigureAwait(false);
            return;
        }

        var now = time.GetUtcNow();
        var rotated = await RefreshTokens.RotateAsync(refreshToken, GatehouseCliClient.ClientId, now, context.RequestAborted).ConfigureAwait(false);
        if (!rotated.Success || !string.Equals(rotated.Previous!.Scope, AdminTokenService.Scope, StringComparison.Ordinal))
        {
            await Responses.OAuthErrorAsync(context, AadError.RefreshTokenInvalid).ConfigureAwait(false);
            return;
        }

        var previous = rotated.Previous;
        var user = await Directory.FindUserAsync(previous.UserId).ConfigureAwait(false);
        if (user is null || !user.Enabled)
        {
            await RefreshTokens.RevokeGrantAsync(previous.GrantId, "account disabled", now).ConfigureAwait(false);
            if (user is not null)
            {
                await LogRefreshAsync(context, user, AadError.AccountDisabled, $"account_disabled: {user.UserPrincipalName} is disabled; the admin API refresh was refused and the sign-in revoked", $"gatehouse user enable {user.UserPrincipalName}").ConfigureAwait(false);
            }

            await Responses.OAuthErrorAsync(context, AadError.AccountDisabled).ConfigureAwait(false);
            return;
        }

        IReadOnlyList<string> amr = ["pwd"];
        var decision = await Access.EvaluateApplicationConditionalAccessAsync(new AccessRequest
        {
            UserId = user.Id,
            HostId = Guid.Empty,
            ClientAddress = AuthorizeEndpoint.ClientAddress(context),
            AuthenticationMethods = amr,
            AuthenticatedAt = rotated.SignedInAt,
            Application = GatehouseApplications.AdminApi,
        }, context.RequestAborted).ConfigureAwait(false);
        if (!decision.Allowed)
        {
            var error = decision.Refusal switch
            {
                AccessRefusal.PolicyControlMissing when decision.Policies?.SatisfiableWithMfa == true => AadError.CliMfaRequired,
                AccessRefusal.ReauthenticationRequired => AadError.CliReauthenticationRequired,
                AccessRefusal.UserDisabled => AadError.AccountDisabled,
                AccessRefusal.PasswordChangeRequired => AadError.PasswordExpired,
                _ => AadError.CliBlockedByConditionalAccess,
            };
            await RefreshTokens.RevokeGrantAsync(previous.GrantId, "Conditional Access refused a refresh", now).ConfigureAwait(false);
            await LogRefreshAsync(context, user, error, $"{decision.Reason} (admin API refresh token; the sign-in was revoked)", decision.Fix ?? "Run 'gatehouse login' again.", decision.PoliciesJson).ConfigureAwait(false);
            await Responses.OAuthErrorAsync(context, error).ConfigureAwait(false);
            return;
        }

        await log.WriteAsync(RefreshEntry(context, user) with
        {
            Succeeded = true,
            Reason = "refreshed: admin API token issued for Gatehouse CLI from a refresh token (pwd); Conditional Access satisfied",
            PoliciesJson = decision.PoliciesJson,
        }).ConfigureAwait(false);
        await IssueAdminAsync(context, user, amr, previous.GrantId, rotated.NewToken, OidcClaims.RequestsOpenId(OAuthForm.Single(form, "scope")), WantsClientInfo(form)).ConfigureAwait(false);
    }

    private static SignInEntry RefreshEntry(HttpContext context, Gatehouse.Storage.User user) => new()
    {
        TenantId = user.TenantId,
        CorrelationId = context.TraceIdentifier,
        Protocol = IdpSignInLog.Protocol,
        Succeeded = false,
        Reason = string.Empty,
        UserId = user.Id,
        UserPrincipalName = user.UserPrincipalName,
        Application = GatehouseCliClient.ClientId,
        ClientAddress = AuthorizeEndpoint.ClientAddress(context).ToString(),
        Methods = ["pwd"],
    };

    private Task LogRefreshAsync(HttpContext context, Gatehouse.Storage.User user, AadError error, string reason, string? fix, string? policiesJson = null) =>
        log.WriteAsync(RefreshEntry(context, user) with
        {
            Reason = reason,
            Code = error.Code == 0 ? error.OAuthError : $"AADSTS{error.Code}",
            UserMessage = error.Describe(),
            Fix = fix,
            PoliciesJson = policiesJson,
        });

    /// <summary>
    /// The Gatehouse CLI's tokens: an admin API access token and a refresh token, plus (as Entra, and as Microsoft's MSAL
    /// libraries need to find the account again) an ID token when <c>openid</c> was asked for and <c>client_info</c>
    /// when the request said <c>client_info=1</c>.
    /// </summary>
    private async Task IssueAdminAsync(HttpContext context, Gatehouse.Storage.User user, IReadOnlyList<string> amr, Guid grantId, string? refreshToken, bool openId, bool clientInfo)
    {
        var accessToken = await AdminTokens.IssueForGrantAsync(user, amr, GatehouseCliClient.ClientId, grantId, context.RequestAborted).ConfigureAwait(false);
        refreshToken ??= await RefreshTokens.IssueAsync(grantId, user.Id, GatehouseCliClient.ClientId, AdminTokenService.Scope, context.RequestAborted).ConfigureAwait(false);
        var idToken = openId
            ? await Tokens.IssueIdTokenAsync(new IdTokenRequest { User = user, ClientId = GatehouseCliClient.ClientId, Issuer = urls.Issuer(user.TenantId) }, context.RequestAborted).ConfigureAwait(false)
            : null;
        await WriteTokensAsync(context, "Bearer", AdminTokenService.Scope, AdminTokens.Lifetime, accessToken, refreshToken, idToken, clientInfo ? OidcClaims.ClientInfo(user) : null).ConfigureAwait(false);
    }

    /// <summary>True when the token request asks for Entra's <c>client_info</c> (<c>client_info=1</c>, as MSAL always sends).</summary>
    private static bool WantsClientInfo(IFormCollection form) => OAuthForm.Single(form, "client_info") == "1";

    /// <summary>The token response: <c>expires_in</c> one second short of the lifetime, so the client renews in time.</summary>
    private static Task WriteTokensAsync(HttpContext context, string tokenType, string scope, TimeSpan lifetime, string accessToken, string refreshToken, string? idToken = null, string? clientInfo = null)
    {
        var expiresIn = (int)lifetime.TotalSeconds - 1;
        return Responses.JsonAsync(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteString("token_type", tokenType);
            w.WriteString("scope", scope);
            w.WriteNumber("expires_in", expiresIn);
            w.WriteNumber("ext_expires_in", expiresIn);
            w.WriteString("access_token", accessToken);
            w.WriteString("refresh_token", refreshToken);
            if (idToken is not null)
            {
                w.WriteString("id_token", idToken);
            }

            if (clientInfo is not null)
            {
                w.WriteString("client_info", clientInfo);
            }

            w.WriteEndObject();
        });
    }

    private sealed record GrantInfo(Guid GrantId, Guid UserId, Guid? HostId, string ClientId, string Scope, IReadOnlyList<string> Amr, DateTimeOffset AuthTime, DateTimeOffset? GrantCreatedAt = null);

    private static string? StripCode(string? description) =>
        description is not null && description.StartsWith("AADSTS", StringComparison.Ordinal) && description.IndexOf(": ", StringComparison.Ordinal) is > 0 and var colon
            ? description[(colon + 2)..]
            : description;

    /// <summary>The RDP access token's contents for a grant (both issuing paths sign the same claims).</summary>
    private RdpTokenRequest AccessTokenRequest(GrantInfo grant, Gatehouse.Storage.Tenant tenant, Gatehouse.Storage.User user, Gatehouse.Storage.Host host, string thumbprint) => new()
    {
        Tenant = tenant,
        User = user,
        Host = host,
        Amr = grant.Amr,
        AuthTime = grant.AuthTime,
        ClientId = grant.ClientId,
        CnfKid = thumbprint,
        Issuer = urls.Issuer(user.TenantId),
        GrantId = grant.GrantId,
        Lifetime = AccessTokenLifetime,
    };

    /// <summary>
    /// Issues the RDP tokens of <paramref name="grant"/>. <paramref name="requestTenant"/> is the tenant the request's
    /// path named, already read: when it is the user's, it is not read again. <paramref name="directoryRead"/> is the
    /// grant's user and host when they were read with the code (<see cref="CodeRedemption"/>'s statement).
    /// </summary>
    private async Task IssueAsync(HttpContext context, GrantInfo grant, string thumbprint, DateTimeOffset now, string? rotatedRefreshToken = null, Gatehouse.Storage.Tenant? requestTenant = null,
        (Gatehouse.Storage.User? User, Gatehouse.Storage.Host? Host)? directoryRead = null)
    {
        var reads = IdpTelemetry.Source.StartActivity("gatehouse.idp.token.directory_reads");
        var (user, host) = directoryRead is { } read
            ? read
            : grant.HostId is { } hostId
            ? await Directory.FindUserAndHostAsync(grant.UserId, hostId).ConfigureAwait(false)
            : (await Directory.FindUserAsync(grant.UserId).ConfigureAwait(false), null);
        if (user is null || !user.Enabled || host is null)
        {
            reads?.Dispose();
            await Responses.OAuthErrorAsync(context, user is null || !user.Enabled ? AadError.AccountDisabled : AadError.UnknownHost).ConfigureAwait(false);
            return;
        }

        var tenant = requestTenant is not null && requestTenant.Id == user.TenantId
            ? requestTenant
            : await Directory.FindTenantAsync(user.TenantId.ToString("D")).ConfigureAwait(false);
        reads?.Dispose();
        // No phase span around the signing: the token carries the current span (gh_trace) and remembers it for the
        // proof's links, and that must be the redemption, not a profiling phase.
        var accessToken = await Tokens.IssueRdpAccessTokenAsync(AccessTokenRequest(grant, tenant!, user, host, thumbprint) with { DeferSave = rotatedRefreshToken is null }).ConfigureAwait(false);
        string refreshToken;
        using (IdpTelemetry.Source.StartActivity("gatehouse.idp.token.refresh_token"))
        {
            refreshToken = rotatedRefreshToken ?? await RefreshTokens.IssueAsync(grant.GrantId, grant.UserId, grant.ClientId, grant.Scope, grant.GrantCreatedAt).ConfigureAwait(false);
        }

        using var writing = IdpTelemetry.Source.StartActivity("gatehouse.idp.token.response");
        await WriteTokensAsync(context, "pop", grant.Scope, AccessTokenLifetime, accessToken, refreshToken).ConfigureAwait(false);
    }

    /// <summary>The RDP scope needs a proof-of-possession key: <c>req_cnf</c> is required and must be well formed.</summary>
    private static bool TryPopKey(IFormCollection form, out string thumbprint, out AadError error)
    {
        var reqCnf = OAuthForm.Single(form, "req_cnf");
        if (reqCnf is null)
        {
            thumbprint = string.Empty;
            error = AadError.MissingParameter.With("req_cnf");
            return false;
        }

        if (!PopKey.TryParseReqCnf(reqCnf, out thumbprint, out _))
        {
            error = AadError.ReqCnfInvalid;
            return false;
        }

        error = AadError.ReqCnfInvalid;
        return true;
    }

}
