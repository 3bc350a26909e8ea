using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Gatehouse.Gateway.Tls;

/// <summary>
/// Makes an established <see cref="SslStream"/> give its OpenSSL record buffers back while it is idle. On Linux
/// <see cref="SslStream"/> runs on OpenSSL, whose SSL object keeps a read buffer and a write buffer of about 16.7 KiB
/// each for its whole life unless <c>SSL_MODE_RELEASE_BUFFERS</c> is set, and .NET does not set it: a heap profile of
/// 1,000 idle relayed sessions (docs/benchmarks.md) found 65 MiB in them, 32.5 KiB per TLS end, over half of the
/// gateway's native memory per session. With the mode on, OpenSSL frees the read buffer when a read has drained it and
/// the write buffer when a write has gone out (nginx sets it on every connection for the same reason); the price is
/// one allocation of each per record while data flows. .NET offers no option for it, so this reaches the SSL object
/// through <see cref="SslStream"/>'s private security context (a <c>SafeSslHandle</c> whose handle is the <c>SSL*</c>)
/// and calls <c>SSL_ctrl(SSL_CTRL_MODE)</c> in the libssl the runtime itself loaded. Anything unexpected (another
/// platform, a runtime whose internals differ, no libssl mapped, or two) leaves the stream as it is: the buffers then
/// stay, nothing else changes.
/// </summary>
public static class TlsIdleMemory
{
    // openssl/ssl.h: SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS (the same in OpenSSL 1.1 and 3.x).
    private const int SslCtrlMode = 33;
    private const nint SslModeReleaseBuffers = 0x10;

    private static readonly FieldInfo? SecurityContextField = typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);

    private static readonly Lazy<SslCtrl?> Ctrl = new(LoadSslCtrl, LazyThreadSafetyMode.ExecutionAndPublication);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nint SslCtrl(IntPtr ssl, int command, nint argument, IntPtr parameter);

    /// <summary>
    /// Sets <c>SSL_MODE_RELEASE_BUFFERS</c> on <paramref name="tls"/>'s SSL object. Call it once the handshake is done
    /// and while no read or write of the stream is under way (the mode is a plain field of the SSL object). True when
    /// the mode is set now; false when it could not be (not OpenSSL, not authenticated, internals not as expected).
    /// </summary>
    public static bool ReleaseBuffersWhenIdle(SslStream tls)
    {
        ArgumentNullException.ThrowIfNull(tls);
        return Mode(tls, SslModeReleaseBuffers) is { } mode && (mode & SslModeReleaseBuffers) != 0;
    }

    /// <summary>True when <paramref name="tls"/>'s SSL object gives its record buffers back while idle; null when that cannot be read.</summary>
    public static bool? ReleasesBuffersWhenIdle(SslStream tls)
    {
        ArgumentNullException.ThrowIfNull(tls);
        return Mode(tls, 0) is { } mode ? (mode & SslModeReleaseBuffers) != 0 : null;
    }

    /// <summary>ORs <paramref name="bits"/> into the SSL object's mode and returns the mode after it; null when not reachable.</summary>
    private static nint? Mode(SslStream tls, nint bits)
    {
        if (!OperatingSystem.IsLinux() || SecurityContextField is null)
        {
            return null;
        }

        if (SecurityContextField.GetValue(tls) is not SafeHandle { IsInvalid: false, IsClosed: false } ssl
            || ssl.GetType().FullName != "Microsoft.Win32.SafeHandles.SafeSslHandle"
            || Ctrl.Value is not { } ctrl)
        {
            return null;
        }

        var added = false;
        try
        {
            ssl.DangerousAddRef(ref added);
            return ctrl(ssl.DangerousGetHandle(), SslCtrlMode, bits, IntPtr.Zero);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            if (added)
            {
                ssl.DangerousRelease();
            }
        }
    }

    /// <summary><c>SSL_ctrl</c> from the one libssl mapped into this process (the one the runtime's OpenSSL shim uses).</summary>
    private static SslCtrl? LoadSslCtrl()
    {
        try
        {
            var paths = File.ReadLines("/proc/self/maps")
                .Select(line => line.IndexOf('/', StringComparison.Ordinal) is var at and >= 0 ? line[at..] : null)
                .Where(path => path is not null && Path.GetFileName(path).StartsWith("libssl.so", StringComparison.Ordinal))
                .Distinct(StringComparer.Ordinal)
                .ToList();
            if (paths.Count != 1 || !NativeLibrary.TryLoad(paths[0]!, out var library))
            {
                return null;
            }

            return NativeLibrary.TryGetExport(library, "SSL_ctrl", out var export)
                ? Marshal.GetDelegateForFunctionPointer<SslCtrl>(export)
                : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
