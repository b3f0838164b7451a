/// Re-evaluates `condition` every `interval` until it holds or `timeout` has passed, and returns
/// whether it held. Tests wait on the outside world (Redis lists, processes) with this instead of
/// sleeping a fixed time, so a slow machine only makes them slower, never wrong.
///
/// Prefer this over `for _ in 0..<n where condition { sleep }`: a `where` clause filters iterations,
/// it does not stop the loop, so such a loop keeps evaluating the condition, without sleeping, until
/// `n` runs out; a condition that spawns a process turns that into seconds of busy work.
public func eventually(
    timeout: Duration, every interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: interval)
    }
}
