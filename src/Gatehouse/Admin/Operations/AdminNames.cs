using System.Globalization;
using Gatehouse.Protocol;

namespace Gatehouse.Admin.Operations;

/// <summary>
/// The rules for names and text an administrator gives (through the CLI or the admin API, which both call the admin
/// operations): lengths capped as Microsoft Entra ID caps them, and no character that could drive a terminal or
/// disguise the text where it is shown later (<see cref="DisplayText.IsUnsafe"/>: control characters such as ESC, CR,
/// LF and NUL, bidirectional overrides such as U+202E, zero-width and other invisible formatting characters). A name
/// that breaks a rule is refused with a 400 that says which rule, never stored.
/// </summary>
internal static class AdminNames
{
    /// <summary>A user principal name: at most 113 characters, 64 of them before the <c>@</c> (Entra ID's limits).</summary>
    public const int UpnLength = 113;

    /// <summary>The part of a user principal name before the <c>@</c>.</summary>
    public const int UpnLocalLength = 64;

    /// <summary>A user's, group's, policy's, named location's or custom role's display name (Entra ID: 256).</summary>
    public const int DisplayNameLength = 256;

    /// <summary>A custom role's description.</summary>
    public const int DescriptionLength = 1024;

    /// <summary>A host's mapped account name (<c>DOMAIN\user</c>, <c>user@domain</c> or a local account).</summary>
    public const int AccountNameLength = 256;

    /// <summary>A backend's host name or address (a DNS name is at most 253 characters).</summary>
    public const int BackendHostLength = 253;

    /// <summary>
    /// <paramref name="value"/> trimmed, after checking it is 1 to <paramref name="max"/> characters without unsafe
    /// characters; <paramref name="what"/> names it in the refusal ("The display name").
    /// </summary>
    public static string Require(string what, string? value, int max)
    {
        var trimmed = value?.Trim() ?? string.Empty;
        if (trimmed.Length == 0)
        {
            throw AdminProblemException.BadRequest($"{what} must not be empty.");
        }

        return Check(what, trimmed, max);
    }

    /// <summary>As <see cref="Require"/> for optional text: null or empty stays as it is.</summary>
    public static string? Optional(string what, string? value, int max) =>
        string.IsNullOrEmpty(value) ? value : Check(what, value, max);

    /// <summary>
    /// A user principal name as Entra ID accepts it: <c>local@domain</c>, at most <see cref="UpnLength"/> characters
    /// and <see cref="UpnLocalLength"/> before the <c>@</c>; the local part of letters, digits and
    /// <c>' . - _ ! # ^ ~</c>, not starting or ending with a period and without two in a row. (The domain must also be
    /// one of the tenant's verified domains, which the directory checks.)
    /// </summary>
    public static string RequireUpn(string? value)
    {
        var upn = Require("The user principal name", value, UpnLength);
        var at = upn.IndexOf('@', StringComparison.Ordinal);
        if (at <= 0 || at == upn.Length - 1 || upn.IndexOf('@', at + 1) >= 0)
        {
            throw AdminProblemException.BadRequest("The user principal name must look like user@domain, with one '@'.");
        }

        var local = upn.AsSpan(0, at);
        if (local.Length > UpnLocalLength)
        {
            throw AdminProblemException.BadRequest(string.Create(CultureInfo.InvariantCulture,
                $"The part of the user principal name before the '@' is {local.Length} characters; the most is {UpnLocalLength} (and {UpnLength} for the whole name)."));
        }

        foreach (var c in local)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('\'' or '.' or '-' or '_' or '!' or '#' or '^' or '~'))
            {
                throw AdminProblemException.BadRequest(
                    $"The user principal name may not contain '{DisplayText.Escape(c.ToString())}' before the '@'; use letters A-Z and a-z, digits and ' . - _ ! # ^ ~ (as Microsoft Entra ID does).");
            }
        }

        if (local[0] == '.' || local[^1] == '.' || local.Contains("..", StringComparison.Ordinal))
        {
            throw AdminProblemException.BadRequest("The user principal name may not start with a period, end with one before the '@', or have two in a row.");
        }

        return upn;
    }

    /// <summary>The text fields of a host create or update (null: not given): the backend's address and the mapped account names.</summary>
    public static void CheckHostFields(string? backendHost, string? adminAccount, string? userAccount)
    {
        Optional("The backend host", backendHost?.Trim(), BackendHostLength);
        Optional("The admin account name", adminAccount?.Trim(), AccountNameLength);
        Optional("The user account name", userAccount?.Trim(), AccountNameLength);
    }

    private static string Check(string what, string value, int max)
    {
        if (value.Length > max)
        {
            throw AdminProblemException.BadRequest(string.Create(CultureInfo.InvariantCulture,
                $"{what} is {value.Length} characters long; the most is {max}. Shorten it."));
        }

        var unsafeAt = DisplayText.FirstUnsafe(value);
        if (unsafeAt >= 0)
        {
            throw AdminProblemException.BadRequest(string.Create(CultureInfo.InvariantCulture,
                $"{what} contains the character {DisplayText.Describe(value, unsafeAt)} at position {unsafeAt + 1}. Names and text may not contain control characters (ESC, CR, LF, NUL, …), bidirectional overrides (U+202E, …) or other invisible formatting characters; type it again without them."));
        }

        return value;
    }
}
