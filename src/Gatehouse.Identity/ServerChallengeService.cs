using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Gatehouse.Identity;

/// <summary>
/// The <c>srv_challenge</c> nonce: a compact JWS signed with the active key (<c>{"typ":"srv_challenge","jti","iat","exp"}</c>),
/// so the gateway can check it without shared state. Base64url and dots only, so it is JSON-safe.
/// </summary>
public sealed class ServerChallengeService
{
    /// <summary>The <c>typ</c> claim value.</summary>
    public const string ChallengeType = "srv_challenge";

    private const int MaxNonceLength = 4096;
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false, MaximumTokenSizeInBytes = MaxNonceLength };
    private static readonly TimeSpan FutureSkew = TimeSpan.FromMinutes(1);
    private readonly SigningKeyService keys;
    private readonly GatehouseIdentityOptions options;

    /// <summary>Creates the service.</summary>
    public ServerChallengeService(SigningKeyService keys, GatehouseIdentityOptions options)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(options);
        this.keys = keys;
        this.options = options;
    }

    /// <summary>Issues a nonce valid from <paramref name="now"/> for the configured lifetime (5 min).</summary>
    public async Task<string> IssueAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var credentials = await keys.GetActiveAsync(cancellationToken).ConfigureAwait(false);
        var iat = now.ToUnixTimeSeconds();
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = credentials,
            Claims = new Dictionary<string, object>
            {
                ["typ"] = ChallengeType,
                ["jti"] = Base64Url.Encode(RandomNumberGenerator.GetBytes(16)),
                ["iat"] = iat,
                ["exp"] = iat + (long)options.ServerChallengeLifetime.TotalSeconds,
            },
        });
    }

    /// <summary>True when <paramref name="nonce"/> was signed by a published key, is a srv_challenge, and is fresh at <paramref name="now"/>.</summary>
    public async Task<bool> ValidateAsync(string nonce, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(nonce) || nonce.Length > MaxNonceLength)
        {
            return false;
        }

        var published = await keys.GetVerificationKeysAsync(now, KeyIdOf(nonce), cancellationToken).ConfigureAwait(false);
        var result = await Handler.ValidateTokenAsync(nonce, new TokenValidationParameters
        {
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            IssuerSigningKeys = published,
            TryAllIssuerSigningKeys = false,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            RequireExpirationTime = false,
        }).ConfigureAwait(false);
        if (!result.IsValid || result.SecurityToken is not JsonWebToken token
            || !token.TryGetPayloadValue<string>("typ", out var typ) || !string.Equals(typ, ChallengeType, StringComparison.Ordinal)
            || !token.TryGetPayloadValue<long>("iat", out var iat) || !token.TryGetPayloadValue<long>("exp", out var exp))
        {
            return false;
        }

        var issued = DateTimeOffset.FromUnixTimeSeconds(iat);
        var expires = DateTimeOffset.FromUnixTimeSeconds(exp);
        return issued <= now + FutureSkew && now < expires && expires - issued <= options.ServerChallengeLifetime;
    }

    /// <summary>The <c>kid</c> of a compact JWS's header, or null when it does not parse.</summary>
    private static string? KeyIdOf(string compact)
    {
        try
        {
            return new JsonWebToken(compact).Kid;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
