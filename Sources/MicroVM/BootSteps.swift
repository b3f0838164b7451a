import Logging

/// Runs the named, ordered steps of a VM boot (validate, prepare runtime directory, spawn VMM, ...),
/// logging each with its duration, and keeps the timings for results and benchmarks.
public struct BootSteps: Sendable {
    /// A finished step.
    public struct Timing: Sendable, Hashable {
        public var name: String
        public var duration: Duration
    }

    public private(set) var timings: [Timing] = []
    private let logger: Logger
    private let clock = ContinuousClock()
    /// When the boot started.
    public let start: ContinuousClock.Instant

    public init(logger: Logger) {
        self.logger = logger
        start = clock.now
    }

    /// Runs one step; its duration is logged whether it succeeds or fails.
    public mutating func run<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        let stepStart = clock.now
        do {
            let value = try await body()
            record(name, since: stepStart, outcome: "ok")
            return value
        } catch {
            record(name, since: stepStart, outcome: "failed")
            throw error
        }
    }

    /// Time since the boot started.
    public var elapsed: Duration { clock.now - start }

    private mutating func record(_ name: String, since stepStart: ContinuousClock.Instant, outcome: String) {
        let duration = clock.now - stepStart
        timings.append(Timing(name: name, duration: duration))
        logger.debug(
            "boot step \(name): \(outcome)",
            metadata: ["step": "\(name)", "ms": "\(Self.milliseconds(duration))", "outcome": "\(outcome)"])
    }

    /// Milliseconds with three decimals, for logs.
    public static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micro = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        let sign = micro < 0 ? "-" : ""
        let absolute = abs(micro)
        let fraction = String(absolute % 1000)
        return "\(sign)\(absolute / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
