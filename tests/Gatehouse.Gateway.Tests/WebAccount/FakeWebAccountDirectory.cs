using Gatehouse.Gateway.WebAccount;

namespace Gatehouse.Gateway.Tests.WebAccount;

/// <summary>An in-memory identity provider (unit-test fake): hosts vm1 (group prod), one tenant, one user.</summary>
internal sealed class FakeWebAccountDirectory : IWebAccountDirectory
{
    public string? CnfKid { get; set; }

    public string? TokenFailure { get; set; }

    public List<string> LookedUp { get; } = [];

    public int TokenChecks { get; private set; }

    public Task<RegisteredHost?> FindHostAsync(string label, CancellationToken cancellationToken)
    {
        LookedUp.Add(label);
        return Task.FromResult(string.Equals(label, "vm1", StringComparison.OrdinalIgnoreCase) ? new RegisteredHost(Guid.NewGuid(), "vm1", "prod") : null);
    }

    public Task<AccessTokenCheck> ValidateAccessTokenAsync(string accessToken, RegisteredHost host, DateTimeOffset now, CancellationToken cancellationToken)
    {
        TokenChecks++;
        return Task.FromResult(new AccessTokenCheck
        {
            Valid = TokenFailure is null,
            FailureReason = TokenFailure,
            CnfKid = CnfKid,
            Upn = "alice@contoso.test",
            ObjectId = Guid.NewGuid(),
            TenantId = Guid.NewGuid(),
            Amr = ["pwd"],
            AuthenticatedAt = now,
            ExpiresAt = now.AddHours(1),
        });
    }

    public Task<bool> ValidateClientNonceAsync(string aadNonce, DateTimeOffset now, CancellationToken cancellationToken) =>
        Task.FromResult(aadNonce == "good");
}
