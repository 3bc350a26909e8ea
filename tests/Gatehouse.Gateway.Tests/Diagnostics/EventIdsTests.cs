using System.Reflection;
using Gatehouse.Gateway.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Gateway.Tests.Diagnostics;

public sealed class EventIdsTests
{
    private const BindingFlags AllDeclared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static List<(string Method, int EventId)> LoggerMessages() =>
        typeof(RdpConnectionHandler).Assembly.GetTypes()
            .SelectMany(type => type.GetMethods(AllDeclared))
            .Select(method => (Method: method, Attribute: method.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .Select(m => ($"{m.Method.DeclaringType!.FullName}.{m.Method.Name}", m.Attribute!.EventId))
            .ToList();

    private static Dictionary<string, int> Constants() =>
        typeof(EventIds).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => field.IsLiteral && field.FieldType == typeof(int))
            .ToDictionary(field => field.Name, field => (int)field.GetRawConstantValue()!);

    [Fact]
    public void EveryLoggerMessage_HasItsOwnEventId()
    {
        var messages = LoggerMessages();
        Assert.True(messages.Count >= 15, $"only {messages.Count} [LoggerMessage] methods found in the gateway assembly");
        var shared = messages.GroupBy(m => m.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}")
            .ToList();
        Assert.Empty(shared);
    }

    [Fact]
    public void EveryLoggerMessage_UsesAnEventIdsConstant()
    {
        var known = Constants().Values.ToHashSet();
        var unnamed = LoggerMessages().Where(m => !known.Contains(m.EventId)).Select(m => $"{m.Method}: {m.EventId}").ToList();
        Assert.Empty(unnamed);
    }

    [Fact]
    public void EveryConstant_IsUsedOnce_AndIsInTheGatewayRange()
    {
        var constants = Constants();
        Assert.Equal(constants.Count, constants.Values.Distinct().Count());
        Assert.All(constants, c => Assert.InRange(c.Value, 100, 999));
        var used = LoggerMessages().Select(m => m.EventId).ToHashSet();
        Assert.Empty(constants.Where(c => !used.Contains(c.Value)).Select(c => c.Key));
    }
}
