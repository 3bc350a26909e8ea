namespace Gatehouse.Hosting;

/// <summary>A configuration or environment problem that stops startup; the message says what to do.</summary>
internal sealed class StartupException : Exception
{
    public StartupException(string message)
        : base(message)
    {
    }

    public StartupException()
    {
    }

    public StartupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
