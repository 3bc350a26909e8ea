namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the RdsAad parsers.</summary>
public static class RdsAadTargets
{
    public static IEnumerable<FuzzTarget> All()
    {
        yield break;
    }
}
