namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the Mcs parsers.</summary>
public static class McsTargets
{
    public static IEnumerable<FuzzTarget> All()
    {
        yield break;
    }
}
