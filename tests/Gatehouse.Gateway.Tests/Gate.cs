namespace Gatehouse.Gateway.Tests;

/// <summary>
/// Holds a fake's step (a directory call, an authorisation) until the test opens it, the way a real store takes its
/// time: the step honours its cancellation token meanwhile, as the real one does.
/// </summary>
internal sealed class Gate
{
    private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the step has started waiting.</summary>
    public Task Entered => _entered.Task;

    /// <summary>Lets every waiting and later step through.</summary>
    public void Open() => _open.TrySetResult();

    /// <summary>Waits for <see cref="Open"/>; throws <see cref="OperationCanceledException"/> when the token is cancelled first.</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        _entered.TrySetResult();
        await _open.Task.WaitAsync(cancellationToken);
    }
}
