import AgentProtocol
import Foundation
import MicroVM
import QEMUDriver

/// The job inside the guest (`true` after the agent's hello): where the agent's time goes
/// (``RunRequest/tracePhases``) in a VM just restored from the snapshot, where TCG translates every
/// code path for the first time, next to the same job sent again to that VM (a primed VM, as the
/// worker's warm VMs are: ``WarmVMPool``).
extension VMBenchmark {
    struct PhaseSamples {
        var fresh: [[AgentPhase]] = []
        var primed: [[AgentPhase]] = []
        /// Request sent → result read, on the host.
        var freshRequest: [Duration] = []
        var primedRequest: [Duration] = []
    }

    /// One restored VM that runs `request` traced, then the warm pool's priming request, then `request`
    /// traced again.
    func phaseSample(driver: QEMUDriver, vm: VMConfiguration, request: RunRequest, into samples: inout PhaseSamples) async throws {
        var traced = request
        traced.tracePhases = true
        let clock = ContinuousClock()
        let (fresh, primed) = try await driver.withVM(vm, logger: logger) { session in
            let start = clock.now
            let first = try await session.run(traced, timeout: .seconds(30))
            let firstDone = clock.now
            // Then the warm pool's priming, untimed: the last request finds its directory, cgroup and shell made.
            _ = try await session.run(WarmVMPool.primingRequest, timeout: .seconds(30))
            let between = clock.now
            let second = try await session.run(traced, timeout: .seconds(30))
            return ((first.phases ?? [], firstDone - start), (second.phases ?? [], clock.now - between))
        }
        samples.fresh.append(fresh.0)
        samples.freshRequest.append(fresh.1)
        samples.primed.append(primed.0)
        samples.primedRequest.append(primed.1)
    }

    /// A table: each phase's p50 in a fresh and in a primed VM, then the totals.
    static func phaseTable(_ samples: PhaseSamples) -> [String] {
        // In order of first appearance: a primed VM's request may have phases of other names.
        var names: [String] = []
        for name in (samples.fresh + samples.primed).flatMap({ $0.map(\.name) }) where !names.contains(name) { names.append(name) }
        guard !names.isEmpty else {
            return ["in-guest phases: the agent sent none (an agent older than protocol revision 4)"]
        }
        func p50(_ runs: [[AgentPhase]], _ name: String) -> String {
            let values = runs.compactMap { $0.first { $0.name == name }?.microseconds }.sorted()
            return values.isEmpty ? "-" : String(format: "%.1f ms", Double(values[(values.count - 1) / 2]) / 1000)
        }
        func total(_ runs: [[AgentPhase]]) -> Double {
            let values = runs.map { $0.reduce(0) { $0 + $1.microseconds } }.sorted()
            return values.isEmpty ? 0 : Double(values[(values.count - 1) / 2]) / 1000
        }
        func row(_ name: String, _ fresh: String, _ primed: String) -> String {
            "  " + name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 12 - fresh.count)) + fresh
                + String(repeating: " ", count: max(0, 13 - primed.count)) + primed
        }
        func milliseconds(_ value: Double) -> String { String(format: "%.1f ms", value) }
        var lines = ["in-guest phases of `true`, p50 of \(samples.fresh.count) VMs".padding(toLength: 38, withPad: " ", startingAt: 0) + "   fresh VM    primed VM"]
        lines += names.map { row($0, p50(samples.fresh, $0), p50(samples.primed, $0)) }
        lines.append(row("agent total (frame read → result)", milliseconds(total(samples.fresh)), milliseconds(total(samples.primed))))
        lines.append(row(
            "host: request sent → result read", milliseconds(seconds(percentile(samples.freshRequest, 50)) * 1000),
            milliseconds(seconds(percentile(samples.primedRequest, 50)) * 1000)))
        return lines
    }

    /// The resumes of the bare warm series (streamed restores), traced (``AgentResume/tracePhases``).
    struct ResumeSamples {
        var phases: [[AgentPhase]] = []
        /// Resume sent → hello read, on the host.
        var roundTrips: [Duration] = []

        mutating func add(_ sample: VMBareLaunch.Sample) {
            if let roundTrip = sample.resumeToHello { roundTrips.append(roundTrip) }
            if let phases = sample.resumePhases { self.phases.append(phases) }
        }
    }

    /// A table: each phase of the resume (p50), the agent's total and the host's round trip.
    static func resumeTable(_ samples: ResumeSamples) -> [String] {
        var names: [String] = []
        for name in samples.phases.flatMap({ $0.map(\.name) }) where !names.contains(name) { names.append(name) }
        func row(_ name: String, _ value: String) -> String {
            "  " + name.padding(toLength: 36, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 12 - value.count)) + value
        }
        func p50(_ values: [Int]) -> String {
            let sorted = values.sorted()
            return sorted.isEmpty ? "-" : String(format: "%.1f ms", Double(sorted[(sorted.count - 1) / 2]) / 1000)
        }
        var lines = ["in-guest phases of the resume, p50 of \(samples.roundTrips.count) restored VMs (bare, streamed)"]
        if samples.phases.isEmpty { lines.append("  the agent sent none (an agent older than protocol revision 5)") }
        lines += names.map { name in row(name, p50(samples.phases.compactMap { $0.first { $0.name == name }?.microseconds })) }
        if !samples.phases.isEmpty { lines.append(row("agent total (frame read → hello)", p50(samples.phases.map { $0.reduce(0) { $0 + $1.microseconds } }))) }
        lines.append(row("host: resume sent → hello read", String(format: "%.1f ms", seconds(percentile(samples.roundTrips, 50)) * 1000)))
        return lines
    }
}
