import Logging

/// Runs a driver's ``BootStep``s in order, timing each and logging it at `debug` whether it succeeds
/// or fails, and keeps the timings for the "VM booted" line.
public enum BootSteps {
    /// A finished step.
    public struct Timing: Sendable, Hashable {
        /// The step's name.
        public var name: String
        /// How long it took.
        public var duration: Duration
    }

    /// Stops at the first step that throws and reports which one it was.
    public static func run<VM>(_ steps: [BootStep<VM>], on vm: VM) async throws(BootStepFailure) -> [Timing] {
        let clock = ContinuousClock()
        var timings: [Timing] = []
        for step in steps {
            let start = clock.now
            do {
                try await step.body(vm)
            } catch {
                log(step.name, clock.now - start, outcome: "failed", logger: vm.logger)
                throw BootStepFailure(step: step.name, error: error)
            }
            let duration = clock.now - start
            timings.append(Timing(name: step.name, duration: duration))
            log(step.name, duration, outcome: "ok", logger: vm.logger)
        }
        return timings
    }

    private static func log(_ name: String, _ duration: Duration, outcome: String, logger: Logger) {
        logger.debug(
            "boot step \(name): \(outcome)",
            metadata: ["step": "\(name)", "ms": "\(milliseconds(duration))", "outcome": "\(outcome)"])
    }

    /// Milliseconds with three decimals, for logs and probe reasons.
    public static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let micro = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        let sign = micro < 0 ? "-" : ""
        let absolute = abs(micro)
        let fraction = String(absolute % 1000)
        return "\(sign)\(absolute / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
