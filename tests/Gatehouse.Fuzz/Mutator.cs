using System.Buffers.Binary;

namespace Gatehouse.Fuzz;

/// <summary>
/// Structure-unaware mutations in the style of libFuzzer's default mutators: bit flips, interesting values (lengths
/// of 0, 1, -1, 0x7F.., 0x80.., 0xFF.. in 8/16/32 bits, both byte orders), arithmetic on a byte or word, insertion,
/// deletion, duplication, truncation and splicing with another seed. Deterministic for a given <see cref="Random"/>.
/// </summary>
public sealed class Mutator(Random random, int maxLength = 64 * 1024)
{
    private static readonly byte[] InterestingBytes = [0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x08, 0x0D, 0x0A, 0x10, 0x1F, 0x20, 0x3F, 0x40, 0x7E, 0x7F, 0x80, 0x81, 0xC0, 0xFE, 0xFF, (byte)'"', (byte)'{', (byte)'}', (byte)'.', (byte)'='];

    private static readonly uint[] InterestingWords =
        [0, 1, 2, 4, 7, 8, 0x10, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF];

    private readonly Random _random = random;
    private readonly int _maxLength = maxLength;

    /// <summary>Returns a mutated copy of <paramref name="seed"/>, with 1 to 8 stacked mutations.</summary>
    public byte[] Mutate(byte[] seed, IReadOnlyList<byte[]> others)
    {
        ArgumentNullException.ThrowIfNull(seed);
        ArgumentNullException.ThrowIfNull(others);
        var data = new List<byte>(seed);
        var count = 1 + _random.Next(8);
        for (var i = 0; i < count; i++)
        {
            MutateOnce(data, others);
        }

        if (data.Count > _maxLength)
        {
            data.RemoveRange(_maxLength, data.Count - _maxLength);
        }

        return [.. data];
    }

    private void MutateOnce(List<byte> data, IReadOnlyList<byte[]> others)
    {
        switch (_random.Next(12))
        {
            case 0 when data.Count > 0:
                {
                    var at = _random.Next(data.Count);
                    data[at] ^= (byte)(1 << _random.Next(8));
                    break;
                }

            case 1 when data.Count > 0:
                data[_random.Next(data.Count)] = InterestingBytes[_random.Next(InterestingBytes.Length)];
                break;
            case 2 when data.Count > 0:
                data[_random.Next(data.Count)] = (byte)_random.Next(256);
                break;
            case 3 when data.Count >= 2:
                WriteWord(data, 2);
                break;
            case 4 when data.Count >= 4:
                WriteWord(data, 4);
                break;
            case 5 when data.Count > 0:
                {
                    var at = _random.Next(data.Count);
                    data[at] = unchecked((byte)(data[at] + _random.Next(-8, 9)));
                    break;
                }

            case 6:
                {
                    var at = _random.Next(data.Count + 1);
                    var n = 1 + _random.Next(16);
                    for (var i = 0; i < n; i++)
                    {
                        data.Insert(at, InterestingBytes[_random.Next(InterestingBytes.Length)]);
                    }

                    break;
                }

            case 7 when data.Count > 0:
                {
                    var at = _random.Next(data.Count);
                    data.RemoveRange(at, Math.Min(data.Count - at, 1 + _random.Next(16)));
                    break;
                }

            case 8 when data.Count > 0:
                TruncateAt(data, _random.Next(data.Count));
                break;
            case 9 when data.Count > 0:
                {
                    // Duplicate a chunk (repeated fields, nested structures that appear twice).
                    var at = _random.Next(data.Count);
                    var n = Math.Min(data.Count - at, 1 + _random.Next(64));
                    var chunk = data.GetRange(at, n);
                    data.InsertRange(_random.Next(data.Count + 1), chunk);
                    break;
                }

            case 10 when others.Count > 0:
                {
                    // Splice: our head with another seed's tail.
                    var other = others[_random.Next(others.Count)];
                    if (other.Length == 0)
                    {
                        break;
                    }

                    var cut = _random.Next(data.Count + 1);
                    var from = _random.Next(other.Length);
                    TruncateAt(data, cut);
                    data.AddRange(other.AsSpan(from).ToArray());
                    break;
                }

            case 11 when data.Count > 0:
                {
                    // Overwrite a run with one value (long runs of 0xFF / 0x00 walk length fields past their bounds).
                    var at = _random.Next(data.Count);
                    var n = Math.Min(data.Count - at, 1 + _random.Next(8));
                    var value = InterestingBytes[_random.Next(InterestingBytes.Length)];
                    for (var i = 0; i < n; i++)
                    {
                        data[at + i] = value;
                    }

                    break;
                }

            default:
                data.Add(InterestingBytes[_random.Next(InterestingBytes.Length)]);
                break;
        }
    }

    private void WriteWord(List<byte> data, int width)
    {
        var at = _random.Next(data.Count - width + 1);
        var value = InterestingWords[_random.Next(InterestingWords.Length)];
        Span<byte> bytes = stackalloc byte[4];
        if (_random.Next(2) == 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
            bytes = bytes[..width];
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
            bytes = bytes[(4 - width)..];
        }

        for (var i = 0; i < width; i++)
        {
            data[at + i] = bytes[i];
        }
    }

    private static void TruncateAt(List<byte> data, int length)
    {
        if (length < data.Count)
        {
            data.RemoveRange(length, data.Count - length);
        }
    }
}
