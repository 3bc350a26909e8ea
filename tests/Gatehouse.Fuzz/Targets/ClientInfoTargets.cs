namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the ClientInfo parsers.</summary>
public static class ClientInfoTargets
{
    public static IEnumerable<FuzzTarget> All()
    {
        yield break;
    }
}
