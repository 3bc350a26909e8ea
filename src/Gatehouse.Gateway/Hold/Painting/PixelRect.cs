namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>A rectangle of pixels: left, top, width and height (an empty rectangle has a zero width or height).</summary>
public readonly record struct PixelRect(int X, int Y, int Width, int Height)
{
    /// <summary>One past the right column.</summary>
    public int Right => X + Width;

    /// <summary>One past the bottom row.</summary>
    public int Bottom => Y + Height;

    /// <summary>True when the rectangle covers no pixel.</summary>
    public bool IsEmpty => Width <= 0 || Height <= 0;

    /// <summary>The pixels both rectangles cover (empty when they do not meet).</summary>
    public PixelRect Intersect(PixelRect other)
    {
        var left = Math.Max(X, other.X);
        var top = Math.Max(Y, other.Y);
        var right = Math.Min(Right, other.Right);
        var bottom = Math.Min(Bottom, other.Bottom);
        return right <= left || bottom <= top ? default : new PixelRect(left, top, right - left, bottom - top);
    }

    /// <summary>True when the two rectangles share at least one pixel.</summary>
    public bool Overlaps(PixelRect other) => !Intersect(other).IsEmpty;

    /// <summary>True when every pixel of <paramref name="other"/> is inside this rectangle.</summary>
    public bool Contains(PixelRect other) =>
        other.IsEmpty || (other.X >= X && other.Y >= Y && other.Right <= Right && other.Bottom <= Bottom);

    /// <summary>The smallest rectangle holding both.</summary>
    public PixelRect Union(PixelRect other)
    {
        if (IsEmpty)
        {
            return other;
        }

        if (other.IsEmpty)
        {
            return this;
        }

        var left = Math.Min(X, other.X);
        var top = Math.Min(Y, other.Y);
        return new PixelRect(left, top, Math.Max(Right, other.Right) - left, Math.Max(Bottom, other.Bottom) - top);
    }

    /// <summary>The rectangle grown by <paramref name="amount"/> pixels on every side (shrunk when negative).</summary>
    public PixelRect Inflate(int amount) => new(X - amount, Y - amount, Math.Max(0, Width + (2 * amount)), Math.Max(0, Height + (2 * amount)));
}
