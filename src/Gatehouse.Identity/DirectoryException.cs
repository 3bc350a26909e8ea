namespace Gatehouse.Identity;

/// <summary>A directory request that cannot be carried out, with a sentence that says what to do instead.</summary>
public sealed class DirectoryException : Exception
{
    /// <summary>Creates the exception.</summary>
    public DirectoryException()
    {
    }

    /// <summary>Creates the exception with the sentence for the user.</summary>
    public DirectoryException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with the sentence for the user and the cause.</summary>
    public DirectoryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
