namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// The pixels of one hold screen: <see cref="Width"/> × <see cref="Height"/> 32 bpp pixels (<see cref="Bgra"/>), row
/// by row from the top. Every primitive clips to the buffer, so a shape partly or wholly outside it draws what is
/// inside and never throws. The size comes from the client's Client Core Data, so it is checked against
/// <see cref="MaxSide"/> and <see cref="MaxPixels"/> before anything is allocated (<see cref="TryCreate"/>).
/// </summary>
public sealed class Framebuffer
{
    /// <summary>The largest width or height accepted (RDP's own limit is 8192).</summary>
    public const int MaxSide = 8192;

    /// <summary>The largest pixel count accepted: 16,777,216 (64 MiB per copy; 8K UHD 7680×2160 fits, 8192×8192 does not).</summary>
    public const int MaxPixels = 16 * 1024 * 1024;

    private readonly uint[] pixels;

    private Framebuffer(int width, int height)
    {
        Width = width;
        Height = height;
        pixels = new uint[width * height];
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The whole buffer as a rectangle.</summary>
    public PixelRect Bounds => new(0, 0, Width, Height);

    /// <summary>The pixels, row by row from the top (index y × <see cref="Width"/> + x).</summary>
    public Span<uint> Pixels => pixels;

    /// <summary>
    /// A black buffer of the given size, or false with a sentence naming the problem when the size is not between
    /// 1×1 and <see cref="MaxSide"/>×<see cref="MaxSide"/> or has more than <see cref="MaxPixels"/> pixels.
    /// </summary>
    public static bool TryCreate(int width, int height, out Framebuffer? framebuffer, out string? error)
    {
        framebuffer = null;
        if (width < 1 || height < 1 || width > MaxSide || height > MaxSide)
        {
            error = $"the screen size {width}×{height} is outside 1×1 to {MaxSide}×{MaxSide}";
            return false;
        }

        if ((long)width * height > MaxPixels)
        {
            error = $"the screen size {width}×{height} has more than {MaxPixels} pixels";
            return false;
        }

        error = null;
        framebuffer = new Framebuffer(width, height);
        return true;
    }

    /// <summary>A buffer of a size the caller already knows is valid; throws <see cref="ArgumentOutOfRangeException"/> otherwise.</summary>
    public static Framebuffer Create(int width, int height) =>
        TryCreate(width, height, out var framebuffer, out var error) ? framebuffer! : throw new ArgumentOutOfRangeException(nameof(width), error);

    /// <summary>The pixel at (<paramref name="x"/>, <paramref name="y"/>); throws outside the buffer.</summary>
    public uint this[int x, int y]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(x);
            ArgumentOutOfRangeException.ThrowIfNegative(y);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(x, Width);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(y, Height);
            return pixels[(y * Width) + x];
        }
    }

    /// <summary>Every pixel set to <paramref name="color"/>.</summary>
    public void Clear(uint color) => pixels.AsSpan().Fill(color);

    /// <summary>Sets one pixel; nothing happens outside the buffer.</summary>
    public void SetPixel(int x, int y, uint color)
    {
        if (x >= 0 && x < Width && y >= 0 && y < Height)
        {
            pixels[(y * Width) + x] = color;
        }
    }

    /// <summary>Fills the part of <paramref name="area"/> inside the buffer.</summary>
    public void FillRect(PixelRect area, uint color)
    {
        var clip = Clip(area);
        for (var y = clip.Y; y < clip.Bottom; y++)
        {
            pixels.AsSpan((y * Width) + clip.X, clip.Width).Fill(color);
        }
    }

    /// <summary>The outline of <paramref name="area"/>, <paramref name="thickness"/> pixels wide, inside the rectangle.</summary>
    public void DrawRect(PixelRect area, uint color, int thickness = 1)
    {
        if (area.IsEmpty || thickness < 1)
        {
            return;
        }

        var t = Math.Min(thickness, Math.Min((area.Width + 1) / 2, (area.Height + 1) / 2));
        FillRect(new PixelRect(area.X, area.Y, area.Width, t), color);
        FillRect(new PixelRect(area.X, area.Bottom - t, area.Width, t), color);
        FillRect(new PixelRect(area.X, area.Y + t, t, area.Height - (2 * t)), color);
        FillRect(new PixelRect(area.Right - t, area.Y + t, t, area.Height - (2 * t)), color);
    }

    /// <summary>
    /// Fills <paramref name="area"/> with its corners rounded to <paramref name="radius"/> pixels (clamped to half the
    /// shorter side); pixels outside the corner arcs keep their colour.
    /// </summary>
    public void FillRoundedRect(PixelRect area, int radius, uint color)
    {
        if (area.IsEmpty)
        {
            return;
        }

        var r = Math.Clamp(radius, 0, Math.Min(area.Width, area.Height) / 2);
        for (var row = 0; row < area.Height; row++)
        {
            var inset = CornerInset(row, area.Height, r);
            FillRect(new PixelRect(area.X + inset, area.Y + row, area.Width - (2 * inset), 1), color);
        }
    }

    /// <summary>
    /// The outline of a rounded rectangle, <paramref name="thickness"/> pixels wide: an outer rounded fill in
    /// <paramref name="color"/> with an inner one in <paramref name="inside"/>.
    /// </summary>
    public void DrawRoundedRect(PixelRect area, int radius, uint color, uint inside, int thickness = 1)
    {
        FillRoundedRect(area, radius, color);
        FillRoundedRect(area.Inflate(-Math.Max(1, thickness)), Math.Max(0, radius - thickness), inside);
    }

    /// <summary>A horizontal 1-pixel line from <paramref name="x"/> over <paramref name="length"/> pixels.</summary>
    public void HorizontalLine(int x, int y, int length, uint color) => FillRect(new PixelRect(x, y, length, 1), color);

    /// <summary>A vertical 1-pixel line from <paramref name="y"/> over <paramref name="length"/> pixels.</summary>
    public void VerticalLine(int x, int y, int length, uint color) => FillRect(new PixelRect(x, y, 1, length), color);

    /// <summary>A 1-pixel line between two points, both included (Bresenham), clipped to the buffer.</summary>
    public void DrawLine(int x0, int y0, int x1, int y1, uint color)
    {
        // Clamp far-away end points so the loop stays bounded: a line is only drawn where the buffer is.
        const int Far = MaxSide * 4;
        x0 = Math.Clamp(x0, -Far, Far);
        y0 = Math.Clamp(y0, -Far, Far);
        x1 = Math.Clamp(x1, -Far, Far);
        y1 = Math.Clamp(y1, -Far, Far);
        var dx = Math.Abs(x1 - x0);
        var dy = -Math.Abs(y1 - y0);
        var sx = x0 < x1 ? 1 : -1;
        var sy = y0 < y1 ? 1 : -1;
        var err = dx + dy;
        while (true)
        {
            SetPixel(x0, y0, color);
            if (x0 == x1 && y0 == y1)
            {
                return;
            }

            var e2 = 2 * err;
            if (e2 >= dy)
            {
                err += dy;
                x0 += sx;
            }

            if (e2 <= dx)
            {
                err += dx;
                y0 += sy;
            }
        }
    }

    /// <summary>
    /// Draws the set bits of a 1-bit mask (<paramref name="maskWidth"/> × <paramref name="maskHeight"/>,
    /// <paramref name="stride"/> bytes a row, most significant bit = leftmost pixel) at (<paramref name="x"/>,
    /// <paramref name="y"/>), each bit as a <paramref name="scale"/> × <paramref name="scale"/> block of
    /// <paramref name="color"/>. Clear bits leave the buffer alone.
    /// </summary>
    public void BlitMask(ReadOnlySpan<byte> mask, int maskWidth, int maskHeight, int stride, int x, int y, int scale, uint color)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(scale, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maskWidth);
        ArgumentOutOfRangeException.ThrowIfNegative(maskHeight);
        ArgumentOutOfRangeException.ThrowIfLessThan((long)stride * 8, maskWidth, nameof(stride));
        ArgumentOutOfRangeException.ThrowIfLessThan(mask.Length, stride * maskHeight, nameof(mask));
        var clip = Clip(new PixelRect(x, y, maskWidth * scale, maskHeight * scale));
        if (clip.IsEmpty)
        {
            return;
        }

        for (var py = clip.Y; py < clip.Bottom; py++)
        {
            var row = mask.Slice(((py - y) / scale) * stride, stride);
            var line = pixels.AsSpan(py * Width, Width);
            for (var px = clip.X; px < clip.Right; px++)
            {
                var bit = (px - x) / scale;
                if ((row[bit >> 3] & (0x80 >> (bit & 7))) != 0)
                {
                    line[px] = color;
                }
            }
        }
    }

    /// <summary>
    /// Draws <paramref name="text"/> in the 10x20 font with its top-left corner at (<paramref name="x"/>,
    /// <paramref name="y"/>) and returns the width drawn (see <see cref="FixedFont.DrawText"/>: unsafe characters are
    /// drawn as <c>?</c>).
    /// </summary>
    public int DrawText(string? text, int x, int y, uint color, int scale = 1) => FixedFont.DrawText(this, text, x, y, color, scale);

    /// <summary>
    /// Draws <paramref name="image"/> (straight alpha) scaled by nearest neighbour into <paramref name="area"/>,
    /// blending it over what is there.
    /// </summary>
    public void DrawImage(PngImage image, PixelRect area)
    {
        ArgumentNullException.ThrowIfNull(image);
        var clip = Clip(area);
        for (var py = clip.Y; py < clip.Bottom; py++)
        {
            var sy = (int)((long)(py - area.Y) * image.Height / area.Height);
            for (var px = clip.X; px < clip.Right; px++)
            {
                var sx = (int)((long)(px - area.X) * image.Width / area.Width);
                var index = (py * Width) + px;
                pixels[index] = Bgra.Blend(pixels[index], image.Pixels[(sy * image.Width) + sx]);
            }
        }
    }

    /// <summary>Copies every pixel of <paramref name="other"/> (the same size) into this buffer.</summary>
    public void CopyFrom(Framebuffer other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Width != Width || other.Height != Height)
        {
            throw new ArgumentException("the buffers differ in size", nameof(other));
        }

        other.pixels.CopyTo(pixels, 0);
    }

    /// <summary>The part of <paramref name="area"/> inside the buffer (computed in 64 bits, so any input is safe).</summary>
    public PixelRect Clip(PixelRect area)
    {
        if (area.Width <= 0 || area.Height <= 0)
        {
            return default;
        }

        var left = Math.Max(0L, area.X);
        var top = Math.Max(0L, area.Y);
        var right = Math.Min(Width, (long)area.X + area.Width);
        var bottom = Math.Min(Height, (long)area.Y + area.Height);
        return right <= left || bottom <= top ? default : new PixelRect((int)left, (int)top, (int)(right - left), (int)(bottom - top));
    }

    private static int CornerInset(int row, int height, int radius)
    {
        if (radius == 0)
        {
            return 0;
        }

        var fromEdge = row < radius ? row : height - 1 - row;
        if (fromEdge >= radius)
        {
            return 0;
        }

        // Distance from the arc centre to this row's centre line; the inset is where the circle starts.
        var dy = radius - fromEdge - 0.5;
        var dx = Math.Sqrt(Math.Max(0, (radius * radius) - (dy * dy)));
        return (int)Math.Round(radius - dx);
    }
}
