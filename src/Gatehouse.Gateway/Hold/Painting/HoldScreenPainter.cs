namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// Paints the hold screens: each <c>Paint</c> overload is a pure function of the view model (and the appearance) onto
/// a framebuffer of any size from 640 × 480 to 3840 × 2160 and beyond. Every call repaints the whole screen, and the
/// same view always gives the same pixels, so <see cref="TileTracker"/> finds exactly what a change of the view
/// touched (a typed digit changes only the digit boxes). Layout: a centred card holding the logo, the organisation's
/// name as a heading and the screen's content; on screens of 2560 × 1440 and larger everything is drawn twice as big.
/// A painter holds only its appearance and logo, so one instance may serve every connection at once; each connection
/// paints into its own <see cref="Framebuffer"/>.
/// </summary>
public sealed class HoldScreenPainter
{
    /// <summary>The most digit boxes the code prompt draws.</summary>
    public const int MaxDigits = 10;

    private const int Scale2Width = 2560;
    private const int Scale2Height = 1440;
    private const int CardMaxWidth = 720;
    private const int LogoMaxHeight = 64;

    private readonly HoldScreenAppearance appearance;
    private readonly PngImage? logo;

    /// <summary>A painter with the given appearance and an already decoded logo (or none).</summary>
    public HoldScreenPainter(HoldScreenAppearance appearance, PngImage? logo = null)
    {
        ArgumentNullException.ThrowIfNull(appearance);
        this.appearance = appearance;
        this.logo = logo;
    }

    /// <summary>The appearance the painter draws with.</summary>
    public HoldScreenAppearance Appearance => appearance;

    /// <summary>
    /// A painter for <paramref name="appearance"/>, loading its logo (if it names one) from disk; false with the reason
    /// when the logo cannot be read or decoded.
    /// </summary>
    public static bool TryCreate(HoldScreenAppearance appearance, out HoldScreenPainter? painter, out PngError? error)
    {
        ArgumentNullException.ThrowIfNull(appearance);
        painter = null;
        PngImage? logo = null;
        if (appearance.LogoPath is { Length: > 0 } path && !PngFile.TryLoad(path, out logo, out error))
        {
            return false;
        }

        error = null;
        painter = new HoldScreenPainter(appearance, logo);
        return true;
    }

    /// <summary>Paints the one-time code prompt.</summary>
    public HoldScreenLayout Paint(Framebuffer target, CodePromptView view)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(view);
        var ui = UiScale(target);
        var column = StartColumn(target, ui);
        var digits = Math.Clamp(view.DigitCount, 1, MaxDigits);
        var typed = Math.Clamp(view.TypedDigits, 0, digits);
        column.Text($"Enter the code from your authenticator app for {view.User}", ui, appearance.Text, maxLines: 3);
        column.Space(16 * ui);

        var box = 44 * ui;
        var gap = 12 * ui;
        var rowWidth = Math.Min(column.Width, (digits * box) + ((digits - 1) * gap));
        if (rowWidth < (digits * box) + ((digits - 1) * gap))
        {
            // A narrow card: shrink the boxes rather than overflow it.
            gap = Math.Max(2, gap / 2);
            box = Math.Max(8, (column.Width - ((digits - 1) * gap)) / digits);
            rowWidth = (digits * box) + ((digits - 1) * gap);
        }

        var boxHeight = box * 5 / 4;
        var boxes = column.Block(boxHeight, (fb, area) =>
        {
            var left = area.X + ((area.Width - rowWidth) / 2);
            for (var i = 0; i < digits; i++)
            {
                var cell = new PixelRect(left + (i * (box + gap)), area.Y, box, boxHeight);
                var focused = i == typed;
                fb.DrawRoundedRect(cell, 6 * ui, focused ? Bgra.FromRgb(appearance.Accent) : Bgra.FromRgb(appearance.Border), Bgra.White, focused ? 3 * ui : ui);
                if (i < typed)
                {
                    var dot = Math.Max(4, box / 3);
                    var centre = new PixelRect(cell.X + ((box - dot) / 2), cell.Y + ((boxHeight - dot) / 2), dot, dot);
                    fb.FillRoundedRect(centre, dot / 2, Bgra.FromRgb(appearance.Text));
                }
            }
        });
        column.Space(16 * ui);

        // The error and deadline lines always take their space, so that one appearing moves nothing else.
        column.Text(view.Error, ui, appearance.Error, maxLines: 2, reserveLines: 2);
        column.Space(8 * ui);
        column.Text(view.Deadline, ui, appearance.MutedText, maxLines: 2, reserveLines: 1);
        var card = column.Paint(target);
        return new HoldScreenLayout(card, column.AreaOf(boxes));
    }

    /// <summary>
    /// Paints the QR sign-in screen. The URL is the gateway's own: <see cref="QrCode.Encode"/> throws when it is empty
    /// or longer than <see cref="QrCode.MaxTextLength"/> bytes.
    /// </summary>
    public HoldScreenLayout Paint(Framebuffer target, QrSignInView view)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(view);
        var ui = UiScale(target);
        var qr = QrCode.Encode(view.Url);
        var column = StartColumn(target, ui);
        column.Text($"Are you trying to sign in to {view.Host}?", ui, appearance.Text, maxLines: 2);
        column.Space(8 * ui);
        var minimum = qr.SizeWithQuietZone * 2;
        var code = column.Flexible(minimum, Math.Max(minimum, qr.SizeWithQuietZone * 8 * ui), (fb, area) => qr.Draw(fb, area));
        column.Space(8 * ui);
        column.Text(view.UserCode, (target.Height < 700 ? 2 : 3) * ui, appearance.Accent, maxLines: 1);
        column.Space(8 * ui);
        column.Text(
            view.Instructions ?? "Scan the code with your phone, check that the code on your phone matches the one above, then approve the sign-in.",
            ui,
            appearance.MutedText,
            maxLines: 3);
        var card = column.Paint(target);
        return new HoldScreenLayout(card, column.AreaOf(code));
    }

    /// <summary>Paints a refusal screen.</summary>
    public HoldScreenLayout Paint(Framebuffer target, RefusalView view)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(view);
        var ui = UiScale(target);
        var column = StartColumn(target, ui);
        var message = column.Text(view.Message, ui, appearance.Error, maxLines: 4);
        column.Space(12 * ui);
        column.Text(view.WhatToDo, ui, appearance.Text, maxLines: 4);
        column.Space(16 * ui);
        column.Text($"Reference: {view.ReferenceId}", ui, appearance.MutedText, maxLines: 1);
        var card = column.Paint(target);
        return new HoldScreenLayout(card, column.AreaOf(message));
    }

    /// <summary>Paints the host picker.</summary>
    public HoldScreenLayout Paint(Framebuffer target, HostPickerView view)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(view.Hosts);
        var ui = UiScale(target);
        var column = StartColumn(target, ui);
        column.Text("Choose the computer to connect to", ui, appearance.Text, maxLines: 1);
        column.Space(8 * ui);
        var rowHeight = (FixedFont.CellHeight + 12) * ui;
        var count = view.Hosts.Count;
        var selected = count == 0 ? -1 : Math.Clamp(view.Selected, 0, count - 1);
        var wanted = Math.Max(1, count) * rowHeight;
        var list = column.Flexible(Math.Min(wanted, rowHeight * 3), wanted, (fb, area) =>
        {
            var visible = Math.Max(1, area.Height / rowHeight);
            var first = selected <= 0 ? 0 : selected / visible * visible;
            if (count == 0)
            {
                FixedFont.DrawText(fb, "No computers are available to you.", area.X + (8 * ui), area.Y + (6 * ui), Bgra.FromRgb(appearance.MutedText), ui);
                return;
            }

            for (var i = first; i < Math.Min(count, first + visible); i++)
            {
                var row = new PixelRect(area.X, area.Y + ((i - first) * rowHeight), area.Width, rowHeight - (2 * ui));
                var isSelected = i == selected;
                if (isSelected)
                {
                    fb.FillRoundedRect(row, 4 * ui, Bgra.FromRgb(appearance.Accent));
                }
                else
                {
                    fb.HorizontalLine(row.X, row.Bottom, row.Width, Bgra.FromRgb(appearance.Border));
                }

                var name = FixedFont.Ellipsize(view.Hosts[i], row.Width - (16 * ui), ui);
                FixedFont.DrawText(fb, name, row.X + (8 * ui), row.Y + ((row.Height - (FixedFont.CellHeight * ui)) / 2), Bgra.FromRgb(isSelected ? appearance.AccentText : appearance.Text), ui);
            }
        });
        column.Space(8 * ui);
        column.Text(
            view.Hint ?? (count > 0 ? $"Up and Down choose, Enter connects. {selected + 1} of {count}." : "Ask your administrator for access."),
            ui,
            appearance.MutedText,
            maxLines: 2,
            reserveLines: 2);
        var card = column.Paint(target);
        return new HoldScreenLayout(card, column.AreaOf(list));
    }

    private static int UiScale(Framebuffer target) => target.Width >= Scale2Width && target.Height >= Scale2Height ? 2 : 1;

    private Column StartColumn(Framebuffer target, int ui)
    {
        var margin = Math.Max(8, Math.Min(target.Width, target.Height) / 24);
        var padding = 24 * ui;
        var cardWidth = Math.Max(1, Math.Min(target.Width - (2 * margin), CardMaxWidth * ui));
        var column = new Column(appearance, cardWidth, padding, target.Height - (2 * margin), ui);
        if (logo is not null)
        {
            var height = Math.Min(LogoMaxHeight * ui, logo.Height * ui);
            var width = Math.Max(1, (int)((long)logo.Width * height / logo.Height));
            width = Math.Min(width, column.Width);
            column.Block(height, (fb, area) => fb.DrawImage(logo, new PixelRect(area.X + ((area.Width - width) / 2), area.Y, width, height)));
            column.Space(12 * ui);
        }

        column.Text(appearance.OrganisationName, 2 * ui, appearance.Accent, maxLines: 1);
        column.Space(16 * ui);
        return column;
    }

    /// <summary>
    /// A vertical stack of blocks inside the card: fixed blocks take their height, flexible ones share what is left
    /// (within their minimum and maximum); then the card is centred on the screen and every block drawn.
    /// </summary>
    private sealed class Column(HoldScreenAppearance appearance, int cardWidth, int padding, int maxCardHeight, int ui)
    {
        private readonly List<Item> items = [];
        private readonly Dictionary<int, PixelRect> placed = [];

        public int Width => Math.Max(1, cardWidth - (2 * padding));

        public int Block(int height, Action<Framebuffer, PixelRect> draw) => Add(new Item(height, height, height, draw));

        public int Flexible(int min, int max, Action<Framebuffer, PixelRect> draw) => Add(new Item(min, min, max, draw));

        public void Space(int height) => Add(new Item(height, height, height, null));

        /// <summary>Wrapped, centred text; <paramref name="reserveLines"/> lines of space are taken even when it is shorter or null.</summary>
        public int Text(string? text, int scale, uint color, int maxLines, int reserveLines = 0)
        {
            var lines = string.IsNullOrEmpty(text) ? [] : FixedFont.Wrap(text, Width, scale, maxLines);
            var lineHeight = (FixedFont.CellHeight + 4) * scale;
            var height = Math.Max(lines.Count, Math.Min(reserveLines, maxLines)) * lineHeight;
            return Block(height, (fb, area) =>
            {
                for (var i = 0; i < lines.Count; i++)
                {
                    var width = FixedFont.Measure(lines[i], scale);
                    FixedFont.DrawText(fb, lines[i], area.X + ((area.Width - width) / 2), area.Y + (i * lineHeight) + (2 * scale), Bgra.FromRgb(color), scale);
                }
            });
        }

        public PixelRect AreaOf(int index) => placed.TryGetValue(index, out var area) ? area : default;

        public PixelRect Paint(Framebuffer target)
        {
            var fixedHeight = items.Sum(i => i.Min);
            var flexible = items.Count(i => i.Max > i.Min);
            var spare = Math.Max(0, maxCardHeight - (2 * padding) - fixedHeight);
            var heights = items.Select(i => i.Max > i.Min ? Math.Min(i.Max, i.Min + (spare / Math.Max(1, flexible))) : i.Min).ToArray();
            var cardHeight = heights.Sum() + (2 * padding);
            var card = new PixelRect((target.Width - cardWidth) / 2, Math.Max(0, (target.Height - cardHeight) / 2), cardWidth, cardHeight);
            target.Clear(Bgra.FromRgb(appearance.Background));
            target.FillRoundedRect(card, 12 * ui, Bgra.FromRgb(appearance.Card));
            var y = card.Y + padding;
            for (var i = 0; i < items.Count; i++)
            {
                var area = new PixelRect(card.X + padding, y, Width, heights[i]);
                placed[i] = area;
                items[i].Draw?.Invoke(target, area);
                y += heights[i];
            }

            return card;
        }

        private int Add(Item item)
        {
            items.Add(item);
            return items.Count - 1;
        }

        private sealed record Item(int Height, int Min, int Max, Action<Framebuffer, PixelRect>? Draw);
    }
}
