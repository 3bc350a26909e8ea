namespace Gatehouse.Cli;

/// <summary>Parses the ids that commands take, or fails with the sentence that says where to find them.</summary>
internal static class Lookups
{
    public static Guid ParseId(string text, string what)
    {
        return Guid.TryParse(text, out var id)
            ? id
            : throw new CliException($"'{text}' is not {what} id (a GUID such as 3f2b…); the matching 'list' command shows the ids.");
    }
}
