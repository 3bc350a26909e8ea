namespace Gatehouse.Gateway.Hold.Painting;

/// <summary>
/// The one-time code prompt: "Enter the code from your authenticator app for <paramref name="User"/>",
/// <paramref name="DigitCount"/> boxes (1–10) of which the first <paramref name="TypedDigits"/> show a dot (the digits
/// themselves are never drawn), an optional error line ("That code didn't work. 2 attempts left.") and an optional
/// deadline line ("This prompt closes in 4 minutes."). Texts are composed by the caller; any text is drawn safely.
/// </summary>
public sealed record CodePromptView(string User, int DigitCount, int TypedDigits, string? Error = null, string? Deadline = null);

/// <summary>
/// Sign-in with a phone: a QR code of <paramref name="Url"/>, the short <paramref name="UserCode"/> in large type, the
/// question "Are you trying to sign in to <paramref name="Host"/>?" and <paramref name="Instructions"/> (a default
/// sentence when null).
/// </summary>
public sealed record QrSignInView(string Url, string UserCode, string Host, string? Instructions = null);

/// <summary>A refusal: what happened (<paramref name="Message"/>), what to do about it, and the reference id to quote.</summary>
public sealed record RefusalView(string Message, string WhatToDo, string ReferenceId);

/// <summary>
/// The host picker: <paramref name="Hosts"/> with the one at <paramref name="Selected"/> highlighted; the list scrolls
/// a page at a time when it is longer than the screen. <paramref name="Hint"/> replaces the default key hint.
/// </summary>
public sealed record HostPickerView(IReadOnlyList<string> Hosts, int Selected, string? Hint = null);

/// <summary>
/// Where a screen put things: the card, and the region that changes with input (the digit boxes, the QR code, the
/// list), so that a caller (or a test) knows which tiles a keystroke may touch.
/// </summary>
public sealed record HoldScreenLayout(PixelRect Card, PixelRect Interactive);
