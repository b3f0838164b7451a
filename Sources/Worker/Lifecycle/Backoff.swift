/// Exponential backoff with full jitter, for retrying Redis while it is unreachable: many workers
/// coming back at once must not hammer a server that just restarted.
struct Backoff: Sendable {
    var initial: Duration = .milliseconds(100)
    var maximum: Duration = .seconds(5)
    private var attempt = 0

    init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The next delay: random in [cap/2, cap], cap doubling from `initial` up to `maximum`.
    mutating func next() -> Duration {
        let cap = min(maximum, initial * (1 << min(attempt, 20)))
        attempt += 1
        let capNanoseconds = max(Int64(1), cap.nanoseconds)
        return .nanoseconds(Int64.random(in: (capNanoseconds / 2)...capNanoseconds))
    }

    mutating func reset() { attempt = 0 }

    /// Sleeps for the next delay; returns false when the task was cancelled.
    mutating func wait() async -> Bool {
        do {
            try await Task.sleep(for: next())
            return true
        } catch {
            return false
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
