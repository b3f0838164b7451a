import AgentProtocol
import Foundation
import JobQueue
import MicroVM

extension OutcomePolicy {
    /// "cpu time limit of 1 s exceeded".
    public static func cpuTimeLimitReason(_ limits: ResourceLimits) -> String {
        let ms = limits.cpuTimeMilliseconds ?? 0
        return "cpu " + timeLimitReason(ResourceLimits(wallTimeMilliseconds: ms))
    }

    /// A record with judge mode's fields (`tests`, `passed`, `total`) when the run had cases.
    static func judged(
        verdict: String, exitCode: Int32?, signal: Int32?, wallMilliseconds: Int, cpuMilliseconds: Int, peakMemoryBytes: Int,
        stdoutTruncated: Bool, stderrTruncated: Bool, compileOutput: String?, message: String?, vmm: String,
        bootMilliseconds: Int, queueMilliseconds: Int, tests: [TestResult]?
    ) -> JobResultRecord {
        var record = JobResultRecord(
            verdict: verdict, exitCode: exitCode, signal: signal, wallMilliseconds: wallMilliseconds,
            cpuMilliseconds: cpuMilliseconds, peakMemoryBytes: peakMemoryBytes, stdoutTruncated: stdoutTruncated,
            stderrTruncated: stderrTruncated, compileOutput: compileOutput, message: message, vmm: vmm,
            bootMilliseconds: bootMilliseconds, queueMilliseconds: queueMilliseconds)
        if let tests {
            record.tests = tests.map(testRecord)
            record.passed = tests.count { $0.verdict == .accepted }
            record.total = tests.count
        }
        return record
    }

    static func testRecord(_ test: TestResult) -> JobResultRecord.TestRecord {
        JobResultRecord.TestRecord(
            name: test.name, verdict: test.verdict.rawValue, exitCode: test.exitCode, signal: test.signal,
            wallMilliseconds: test.wallTimeMilliseconds, cpuMilliseconds: test.cpuTimeMilliseconds,
            peakMemoryBytes: test.peakMemoryBytes,
            // Output is shown to a person; bytes that are not UTF-8 cannot go in JSON as they are.
            stdout: String(decoding: test.stdout, as: UTF8.self), stderr: String(decoding: test.stderr, as: UTF8.self),
            stdoutTruncated: test.stdoutTruncated, stderrTruncated: test.stderrTruncated, message: test.message)
    }
}

extension JobResultRecord.LimitsRecord {
    /// The limits a job ran with, as the result JSON reports them.
    init(_ limits: ResourceLimits) {
        self.init(
            wallTimeMilliseconds: limits.wallTimeMilliseconds, cpuTimeMilliseconds: limits.cpuTimeMilliseconds,
            memoryBytes: limits.memoryBytes, processes: limits.maxProcesses, outputBytes: limits.maxOutputBytesPerStream,
            compileWallTimeMilliseconds: limits.compileWallTimeMilliseconds, compileMemoryBytes: limits.compileMemoryBytes,
            maxFileSizeBytes: limits.maxFileSizeBytes)
    }
}

extension JobOutcome {
    /// The same outcome, its result JSON saying which limits the job ran with.
    func reporting(_ limits: ResourceLimits) -> JobOutcome {
        updatingRecord { $0.limits = .init(limits) }
    }

    /// The same outcome, its result JSON saying what the job's VM cost the host (`host_cpu_ms`).
    func costing(_ usage: VMUsage) -> JobOutcome {
        guard let cpu = usage.vmmCPUTime else { return self }
        return updatingRecord { $0.hostCPUMilliseconds = Int(cpu / .milliseconds(1)) }
    }

    /// The same outcome with `change` made to its result JSON, if it has one.
    private func updatingRecord(_ change: (inout JobResultRecord) -> Void) -> JobOutcome {
        switch self {
        case .done(let stdout, let stderr, var record):
            change(&record)
            return .done(stdout: stdout, stderr: stderr, result: record)
        case .failed(let reason, var record?):
            change(&record)
            return .failed(reason: reason, result: record)
        case .failed(_, nil):
            return self
        }
    }
}
