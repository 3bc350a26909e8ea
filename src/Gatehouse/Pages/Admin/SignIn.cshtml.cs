using System.Text.Json;
using Gatehouse.Admin.Operations;
using Gatehouse.Portal;

namespace Gatehouse.Pages.Admin;

/// <summary><c>/admin/signins/{id}</c>: one row of the log (<c>gatehouse signins show</c>): reason, the user's message, the policies' outcomes, the fix.</summary>
internal sealed class SignInModel : PortalPageModel
{
    public SignInView? Row { get; private set; }

    /// <summary>The policies' outcomes as indented JSON (as the log stored them), or null when none was evaluated.</summary>
    public string? Policies { get; private set; }

    public async Task OnGetAsync(string id, CancellationToken cancellationToken)
    {
        Row = await Operations.GetSignInAsync(id, cancellationToken);
        Policies = Indent(Row.Policies);
    }

    private static string? Indent(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(document.RootElement, IndentedJson);
        }
        catch (JsonException)
        {
            return json;
        }
    }

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };
}
