using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gatehouse.Identity.Tests.Support;

/// <summary>
/// A FIDO2 authenticator in software for tests: one ECDSA P-256 credential, attestation <c>none</c>. It builds the
/// attestation object (CBOR) and the assertion (authenticatorData and a signature over authData ‖ SHA-256(clientDataJSON))
/// by hand, and wraps them in the JSON a browser posts, so the FIDO2 library's own code verifies them.
/// </summary>
public sealed class SoftwareAuthenticator : IDisposable
{
    private const byte UserPresent = 0x01;
    private const byte UserVerified = 0x04;
    private const byte BackupEligible = 0x08;
    private const byte BackedUp = 0x10;
    private const byte AttestedCredentialData = 0x40;

    private readonly ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public byte[] CredentialId { get; } = RandomNumberGenerator.GetBytes(32);

    public Guid Aaguid { get; } = new("01020304-0506-0708-090a-0b0c0d0e0f10");

    /// <summary>The next signature counter this authenticator reports (set it back to play a clone).</summary>
    public uint Counter { get; set; } = 1;

    /// <summary>False plays an authenticator that does not count signatures (most synced passkeys): it always reports 0.</summary>
    public bool Counts { get; set; } = true;

    /// <summary>The user handle it stored at registration (a discoverable credential keeps it).</summary>
    public byte[]? UserHandle { get; set; }

    public string Origin { get; set; } = "https://login.test";

    public string RpId { get; set; } = "login.test";

    public bool VerifiesUser { get; set; } = true;

    public bool Synced { get; set; } = true;

    /// <summary>Answers <c>navigator.credentials.create</c> with <paramref name="optionsJson"/>.</summary>
    public string Create(string optionsJson)
    {
        var options = JsonNode.Parse(optionsJson)!;
        var challenge = options["challenge"]!.GetValue<string>();
        UserHandle ??= Base64UrlDecode(options["user"]!["id"]!.GetValue<string>());
        var clientData = ClientData("webauthn.create", challenge);

        var parameters = key.ExportParameters(false);
        var cose = new Cbor().Map(5)
            .Int(1).Int(2) // kty: EC2
            .Int(3).Int(-7) // alg: ES256
            .Int(-1).Int(1) // crv: P-256
            .Int(-2).Bytes(parameters.Q.X!)
            .Int(-3).Bytes(parameters.Q.Y!)
            .ToArray();
        var authData = new List<byte>();
        authData.AddRange(SHA256.HashData(Encoding.UTF8.GetBytes(RpId)));
        authData.Add((byte)(Flags() | AttestedCredentialData));
        authData.AddRange(BigEndian(Counts ? Counter : 0));
        authData.AddRange(Aaguid.ToByteArray(bigEndian: true));
        authData.Add((byte)(CredentialId.Length >> 8));
        authData.Add((byte)CredentialId.Length);
        authData.AddRange(CredentialId);
        authData.AddRange(cose);
        var attestationObject = new Cbor().Map(3)
            .Text("fmt").Text("none")
            .Text("attStmt").Map(0)
            .Text("authData").Bytes([.. authData])
            .ToArray();
        Counter++;

        return new JsonObject
        {
            ["id"] = Base64Url(CredentialId),
            ["rawId"] = Base64Url(CredentialId),
            ["type"] = "public-key",
            ["response"] = new JsonObject
            {
                ["attestationObject"] = Base64Url(attestationObject),
                ["clientDataJSON"] = Base64Url(clientData),
                ["transports"] = new JsonArray("internal"),
            },
            ["clientExtensionResults"] = new JsonObject(),
        }.ToJsonString();
    }

    /// <summary>Answers <c>navigator.credentials.get</c> with <paramref name="optionsJson"/>, then counts up.</summary>
    public string Get(string optionsJson)
    {
        var challenge = JsonNode.Parse(optionsJson)!["challenge"]!.GetValue<string>();
        var clientData = ClientData("webauthn.get", challenge);
        var authData = new List<byte>();
        authData.AddRange(SHA256.HashData(Encoding.UTF8.GetBytes(RpId)));
        authData.Add(Flags());
        authData.AddRange(BigEndian(Counts ? Counter : 0));
        byte[] signed = [.. authData, .. SHA256.HashData(clientData)];
        var signature = key.SignData(signed, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        Counter++;

        var response = new JsonObject
        {
            ["authenticatorData"] = Base64Url([.. authData]),
            ["clientDataJSON"] = Base64Url(clientData),
            ["signature"] = Base64Url(signature),
        };
        if (UserHandle is not null)
        {
            response["userHandle"] = Base64Url(UserHandle);
        }

        return new JsonObject
        {
            ["id"] = Base64Url(CredentialId),
            ["rawId"] = Base64Url(CredentialId),
            ["type"] = "public-key",
            ["response"] = response,
            ["clientExtensionResults"] = new JsonObject(),
        }.ToJsonString();
    }

    public void Dispose() => key.Dispose();

    private static byte[] BigEndian(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] Base64UrlDecode(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '='));
    }

    private byte Flags() =>
        (byte)(UserPresent | (VerifiesUser ? UserVerified : 0) | (Synced ? BackupEligible | BackedUp : 0));

    private byte[] ClientData(string type, string challenge) => JsonSerializer.SerializeToUtf8Bytes(new JsonObject
    {
        ["type"] = type,
        ["challenge"] = challenge,
        ["origin"] = Origin,
        ["crossOrigin"] = false,
    });

    /// <summary>The few CBOR items (RFC 8949) an attestation object needs: maps, text and byte strings, small integers.</summary>
    private sealed class Cbor
    {
        private readonly List<byte> bytes = [];

        public Cbor Map(int count) => Head(5, (ulong)count);

        public Cbor Text(string value)
        {
            var utf8 = Encoding.UTF8.GetBytes(value);
            Head(3, (ulong)utf8.Length);
            bytes.AddRange(utf8);
            return this;
        }

        public Cbor Bytes(byte[] value)
        {
            Head(2, (ulong)value.Length);
            bytes.AddRange(value);
            return this;
        }

        public Cbor Int(int value) => value >= 0 ? Head(0, (ulong)value) : Head(1, (ulong)(-1 - value));

        public byte[] ToArray() => [.. bytes];

        private Cbor Head(int major, ulong argument)
        {
            var type = (byte)(major << 5);
            if (argument < 24)
            {
                bytes.Add((byte)(type | (byte)argument));
            }
            else if (argument <= byte.MaxValue)
            {
                bytes.Add((byte)(type | 24));
                bytes.Add((byte)argument);
            }
            else
            {
                bytes.Add((byte)(type | 25));
                bytes.Add((byte)(argument >> 8));
                bytes.Add((byte)argument);
            }

            return this;
        }
    }
}
