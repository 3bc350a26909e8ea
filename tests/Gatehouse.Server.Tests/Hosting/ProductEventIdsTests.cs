using System.Reflection;
using Gatehouse.Hosting;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Server.Tests.Hosting;

/// <summary>Logging event ids are unique across the whole product (the executable and every Gatehouse library).</summary>
public sealed class ProductEventIdsTests
{
    private const BindingFlags AllDeclared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static List<Assembly> ProductAssemblies()
    {
        var executable = typeof(GatehouseHost).Assembly;
        var libraries = executable.GetReferencedAssemblies()
            .Where(name => name.Name!.StartsWith("Gatehouse.", StringComparison.Ordinal))
            .Select(Assembly.Load);
        return [executable, .. libraries];
    }

    private static List<(string Method, int EventId)> LoggerMessages() =>
        ProductAssemblies()
            .SelectMany(assembly => assembly.GetTypes())
            .SelectMany(type => type.GetMethods(AllDeclared))
            .Select(method => (Method: method, Attribute: method.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .Select(m => ($"{m.Method.DeclaringType!.Assembly.GetName().Name}: {m.Method.DeclaringType.FullName}.{m.Method.Name}", m.Attribute!.EventId))
            .ToList();

    [Fact]
    public void EveryLoggerMessage_InTheProduct_HasItsOwnEventId()
    {
        var assemblies = ProductAssemblies().Select(a => a.GetName().Name).ToList();
        Assert.Contains("Gatehouse.Gateway", assemblies);
        Assert.Contains("Gatehouse.Identity", assemblies);
        var messages = LoggerMessages();
        Assert.True(messages.Count >= 35, $"only {messages.Count} [LoggerMessage] methods found");
        var shared = messages.GroupBy(m => m.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Method))}")
            .ToList();
        Assert.Empty(shared);
    }

    [Fact]
    public void ServerEventIds_AreDistinct_AndEachIsUsed()
    {
        var constants = typeof(ServerEventIds).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(field => field.IsLiteral)
            .ToDictionary(field => field.Name, field => (int)field.GetRawConstantValue()!);
        Assert.Equal(constants.Count, constants.Values.Distinct().Count());
        Assert.All(constants, c => Assert.InRange(c.Value, 1000, 1999));
        var used = LoggerMessages().Select(m => m.EventId).ToHashSet();
        Assert.Empty(constants.Where(c => !used.Contains(c.Value)).Select(c => c.Key));
    }
}
