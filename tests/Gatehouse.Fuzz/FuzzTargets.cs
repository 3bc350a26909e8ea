using Gatehouse.Fuzz.Targets;

namespace Gatehouse.Fuzz;

/// <summary>Every fuzz target, in one list (the tests and the long-run command both use it).</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        .. X224Targets.All(),
        .. McsTargets.All(),
        .. ClientInfoTargets.All(),
        .. RdsAadTargets.All(),
        .. NtlmTargets.All(),
        .. CredSspTargets.All(),
        .. CredSspServerTargets.All(),
        .. FramingTargets.All(),
        .. ConnectionSequenceTargets.All(),
        .. PngTargets.All(),
        .. HoldFrontTargets.All(),
        .. PasswordHashTargets.All(),
        .. StrengthJsonTargets.All(),
        .. AgentTargets.All(),
        .. ListeningAddressTargets.All(),
        .. WebAuthnTargets.All(),
    ];

    public static FuzzTarget? Find(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase));
}
