namespace Gatehouse.Fuzz.Targets;

/// <summary>Fuzz targets for the X224 parsers.</summary>
public static class X224Targets
{
    public static IEnumerable<FuzzTarget> All()
    {
        yield break;
    }
}
