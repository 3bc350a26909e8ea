namespace Gatehouse.Identity.Tests.Support;

/// <summary>A settable clock (Microsoft.Extensions.TimeProvider.Testing is not in the package mirror's pinned set).</summary>
public sealed class FakeTime : TimeProvider
{
    private DateTimeOffset now;

    public FakeTime(DateTimeOffset start) => now = start;

    public FakeTime()
        : this(new DateTimeOffset(2026, 11, 23, 8, 0, 0, TimeSpan.Zero))
    {
    }

    public override DateTimeOffset GetUtcNow() => now;

    public void Advance(TimeSpan by) => now += by;

    public void Set(DateTimeOffset value) => now = value;
}
