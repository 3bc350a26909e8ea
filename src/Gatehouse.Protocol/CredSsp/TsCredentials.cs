using System.Diagnostics.CodeAnalysis;
using System.Formats.Asn1;
using System.Text;

namespace Gatehouse.Protocol.CredSsp;

/// <summary>
/// [MS-CSSP] 2.2.1.2 TSCredentials with 2.2.1.2.1 TSPasswordCreds (credType 1): the user's domain, name and password
/// as UTF-16LE. Other credential types (smart card 2, Remote Credential Guard 6) are recognised and refused.
/// </summary>
public sealed class TsCredentials
{
    /// <summary>credType of TSPasswordCreds.</summary>
    public const int PasswordCredType = 1;

    /// <summary>Longest domain, user or password accepted, in UTF-16 code units.</summary>
    public const int MaxFieldChars = 256;

    private const string Pdu = "TSCredentials";

    /// <summary>Creates password credentials.</summary>
    public TsCredentials(string domainName, string userName, string password)
    {
        ArgumentNullException.ThrowIfNull(domainName);
        ArgumentNullException.ThrowIfNull(userName);
        ArgumentNullException.ThrowIfNull(password);
        DomainName = domainName;
        UserName = userName;
        Password = password;
    }

    /// <summary>domainName.</summary>
    public string DomainName { get; }

    /// <summary>userName.</summary>
    public string UserName { get; }

    /// <summary>password.</summary>
    public string Password { get; }

    /// <summary>Parses TSCredentials; only credType 1 (password) is supported.</summary>
    public static bool TryParse(ReadOnlySpan<byte> source, [MaybeNullWhen(false)] out TsCredentials value, out PduError? error)
    {
        value = null;
        if (source.Length > TsRequest.MaxSize)
        {
            error = PduError.TooLarge(Pdu, "message", source.Length, TsRequest.MaxSize);
            return false;
        }

        try
        {
            var outer = new AsnReader(source.ToArray(), AsnEncodingRules.DER);
            var sequence = outer.ReadSequence();
            outer.ThrowIfNotEmpty();
            var credType = Der.ReadExplicitInteger(sequence, 0);
            var credentials = Der.ReadExplicitOctets(sequence, 1, TsRequest.MaxSize, Pdu, "credentials");
            sequence.ThrowIfNotEmpty();
            if (credType != PasswordCredType)
            {
                error = PduError.Unsupported(Pdu, "credType", credType switch
                {
                    2 => "smart card credentials (2)",
                    6 => "Remote Credential Guard credentials (6)",
                    _ => $"credential type {credType}",
                });
                return false;
            }

            var inner = new AsnReader(credentials, AsnEncodingRules.DER);
            var password = inner.ReadSequence();
            inner.ThrowIfNotEmpty();
            var domain = Der.ReadExplicitOctets(password, 0, MaxFieldChars * 2, "TSPasswordCreds", "domainName");
            var user = Der.ReadExplicitOctets(password, 1, MaxFieldChars * 2, "TSPasswordCreds", "userName");
            var secret = Der.ReadExplicitOctets(password, 2, MaxFieldChars * 2, "TSPasswordCreds", "password");
            password.ThrowIfNotEmpty();
            foreach (var (bytes, field) in new[] { (domain, "domainName"), (user, "userName"), (secret, "password") })
            {
                if ((bytes.Length & 1) != 0)
                {
                    error = PduError.Invalid("TSPasswordCreds", field, $"UTF-16 string of odd length {bytes.Length}");
                    return false;
                }
            }

            value = new TsCredentials(Encoding.Unicode.GetString(domain), Encoding.Unicode.GetString(user), Encoding.Unicode.GetString(secret));
            error = null;
            return true;
        }
        catch (LimitException e)
        {
            error = e.Error;
            return false;
        }
        catch (AsnContentException e)
        {
            error = Der.Error(Pdu, "TSCredentials", e);
            return false;
        }
    }

    /// <summary>The DER encoding (what the CredSSP client seals into authInfo).</summary>
    public byte[] Encode()
    {
        var inner = new AsnWriter(AsnEncodingRules.DER);
        inner.PushSequence();
        Der.WriteExplicitOctets(inner, 0, Encoding.Unicode.GetBytes(DomainName));
        Der.WriteExplicitOctets(inner, 1, Encoding.Unicode.GetBytes(UserName));
        Der.WriteExplicitOctets(inner, 2, Encoding.Unicode.GetBytes(Password));
        inner.PopSequence();

        var writer = new AsnWriter(AsnEncodingRules.DER);
        writer.PushSequence();
        Der.WriteExplicitInteger(writer, 0, PasswordCredType);
        Der.WriteExplicitOctets(writer, 1, inner.Encode());
        writer.PopSequence();
        return writer.Encode();
    }

    /// <summary>Never prints the password.</summary>
    public override string ToString() => $"TSPasswordCreds {DomainName}\\{UserName}";
}
