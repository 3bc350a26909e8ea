namespace Gatehouse.Hosting;

/// <summary>
/// HTTP Strict Transport Security (RFC 6797) on every HTTPS response, so a browser that has seen the IdP once never
/// tries it over plain HTTP. Configuration section <c>Gatehouse:Hsts</c>: <c>MaxAge</c> (default 365 days; 0 tells
/// browsers to forget the policy) and <c>IncludeSubDomains</c> (default false: the hosts' names need not be the IdP's
/// subdomains, nor all served over HTTPS). Browsers ignore the header for IP addresses (RFC 6797 §8.1).
/// </summary>
internal static class Hsts
{
    public const string Section = "Gatehouse:Hsts";

    /// <summary>The default <c>max-age</c>: one year.</summary>
    public static readonly TimeSpan DefaultMaxAge = TimeSpan.FromDays(365);

    public static void AddGatehouseHsts(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var section = builder.Configuration.GetSection(Section);
        TimeSpan maxAge;
        bool includeSubDomains;
        try
        {
            maxAge = section.GetValue("MaxAge", DefaultMaxAge);
            includeSubDomains = section.GetValue("IncludeSubDomains", false);
        }
        catch (InvalidOperationException e)
        {
            throw new StartupException($"Invalid configuration in {Section}: {e.Message} MaxAge is a duration such as 365.00:00:00.");
        }

        if (maxAge < TimeSpan.Zero)
        {
            throw new StartupException($"{Section}:MaxAge must not be negative (it is {maxAge}); use 0 to have browsers forget the policy.");
        }

        builder.Services.AddHsts(options =>
        {
            options.MaxAge = maxAge;
            options.IncludeSubDomains = includeSubDomains;
            options.Preload = false;

            // ASP.NET Core leaves out localhost and the loopback addresses. Browsers ignore the header for addresses, so
            // only 'localhost' stays out (a policy for it would upgrade every other local development server too).
            options.ExcludedHosts.Clear();
            options.ExcludedHosts.Add("localhost");
        });
    }
}
