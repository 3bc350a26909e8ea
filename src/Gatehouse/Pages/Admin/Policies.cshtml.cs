using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Gatehouse.Access;
using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary>
/// <c>/admin/policies</c>: the Conditional Access policies and their state (enable, disable, report-only), as
/// <c>gatehouse policy list</c> and the API's state change; one policy's stored JSON (<c>gatehouse policy show</c>),
/// pretty-printed; and the what-if form (<c>gatehouse policy what-if</c>, the same operation). The state buttons are
/// drawn only for a caller who holds policies/write (the operation checks it again).
/// </summary>
internal sealed class PoliciesModel : PortalPageModel
{
    /// <summary>The states a policy can be put in, with the button's text.</summary>
    public static readonly IReadOnlyList<(string State, string Text)> States =
        [("enabled", "Enable"), ("disabled", "Disable"), ("enabledForReportingButNotEnforced", "Report-only")];

    // Everything outside printable ASCII (bidi and control characters included) and the HTML-sensitive characters
    // are written as \uXXXX escapes; Razor HTML-encodes the result again.
    private static readonly JsonWriterOptions PrettyJson = new() { Indented = true, Encoder = JavaScriptEncoder.Create(UnicodeRanges.BasicLatin) };

    public IReadOnlyList<PolicyView> Policies { get; private set; } = [];

    public string? Message { get; private set; }

    /// <summary>The policy whose JSON is shown, and the JSON.</summary>
    public (string Name, string Json)? Shown { get; private set; }

    /// <summary>The what-if form's answer.</summary>
    public WhatIfView? WhatIf { get; private set; }

    /// <summary>The what-if form's values (echoed back into the form).</summary>
    public WhatIfRequest Asked { get; private set; } = new(null, null, null, false);

    /// <summary>Whether to draw the state buttons: the caller holds policies/write at the tenant.</summary>
    public bool CanWrite => Caller.Can(AdminOperations.PoliciesWrite, Scope.Tenant);

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }

    /// <summary>One policy's stored JSON, pretty-printed.</summary>
    public async Task OnGetJsonAsync(string? name, CancellationToken cancellationToken)
    {
        var json = await Operations.GetPolicyJsonAsync(name ?? string.Empty, cancellationToken);
        Shown = (name ?? string.Empty, Pretty(json));
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }

    /// <summary>The what-if form: what the policies decide for a sign-in of the user to the host (read only, so a GET).</summary>
    public async Task OnGetWhatIfAsync(string? user, string? host, string? ip, bool mfa, bool passkey, CancellationToken cancellationToken)
    {
        Asked = new WhatIfRequest(user, host, string.IsNullOrWhiteSpace(ip) ? null : ip.Trim(), mfa, passkey);
        WhatIf = await Operations.WhatIfAsync(Asked, cancellationToken);
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }

    public async Task OnPostStateAsync(string? name, string? state, CancellationToken cancellationToken)
    {
        var changed = await Operations.SetPolicyStateAsync(name ?? string.Empty, state ?? string.Empty, cancellationToken);
        Message = $"'{changed.Name}' is now {changed.State}.";
        Policies = await Operations.ListPoliciesAsync(cancellationToken);
    }

    /// <summary>The JSON indented, with every character outside printable ASCII escaped; the stored text as it is when it does not parse.</summary>
    public static string Pretty(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
            using var buffer = new MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer, PrettyJson))
            {
                document.WriteTo(writer);
            }

            return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
        }
        catch (JsonException)
        {
            return PortalText.T(json);
        }
    }
}
