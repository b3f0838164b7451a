import AgentProtocol
import Foundation
import JobQueue
import MicroVM

/// How a job ends for the platform: `done` means the program ran, whatever its exit code;
/// `failed` means the platform could not run it, or a limit stopped it, with a reason a person can act on.
public enum TerminalStatus: Sendable, Equatable {
    case done
    case failed(reason: String)
}

/// The mapping from what the guest reported (or how the VM failed) to the status the platform sees.
///
/// Decisions (see README "Running the worker"):
/// - `ok` and `runtime_error` are `done`; the exit code and signal are in the result JSON.
/// - Output beyond the per-stream limit is cut and flagged (`stdout_truncated`). A program that still
///   exited by itself is `done` with the flags; one the agent killed for flooding output
///   (`output_limit` with a signal) is `failed` ("output limit of N bytes exceeded").
/// - `compile_error` is `failed` ("compile error: <first error line>"): the program never ran. The full
///   compiler output is in the result JSON (`compile_output`). A compiler the agent killed at a compile
///   limit is "compile error: <the agent's message>" ("compilation exceeded the time limit of 300 ms").
/// - A VM that could not boot or died is `failed` with the VM's message.
///
/// It is also the one place a guest ``RunResult`` becomes the wire's ``JobResultRecord``: the queue
/// publishes records and knows nothing of the guest.
public enum OutcomePolicy {
    /// `done` or `failed` (with its reason) for what the guest reported.
    public static func status(for result: RunResult, limits: ResourceLimits) -> TerminalStatus {
        // A judged job ran its cases: whatever they gave is `done`, with the verdicts in the result JSON.
        if result.tests != nil && result.verdict != .compileError { return .done }
        switch result.verdict {
        case .ok, .runtimeError, .accepted, .wrongAnswer, .skipped:
            return .done
        case .cpuTimeLimit:
            return .failed(reason: cpuTimeLimitReason(limits))
        case .timeLimit:
            return .failed(reason: timeLimitReason(limits))
        case .memoryLimit:
            return .failed(reason: "memory limit of \(formatMiB(limits.memoryBytes)) exceeded")
        case .outputLimit where result.signal == nil && result.exitCode != nil:
            return .done
        case .outputLimit:
            return .failed(reason: "output limit of \(limits.maxOutputBytesPerStream) bytes exceeded")
        case .compileError where result.signal != nil && result.message != nil:
            // The agent stopped the compiler (its wall time or memory limit): the output, if any, is cut
            // short and its first "error" line would blame the program; the agent's message names the limit.
            return .failed(reason: "compile error: \(clip(result.message ?? "", 300))")
        case .compileError:
            let output = result.compileOutput.flatMap { $0.isEmpty ? nil : $0 } ?? result.stderr
            // gcc starts with context ("main.c: In function 'main':"); the first error line says what is wrong.
            let lines = String(decoding: output, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init)
            let line = lines.first { $0.localizedCaseInsensitiveContains("error") } ?? lines.first ?? ""
            return .failed(reason: line.isEmpty ? "compile error" : "compile error: \(clip(line, 300))")
        case .internalError:
            return .failed(reason: "internal error in the VM: \(clip(result.message ?? "no detail", 300))")
        }
    }

    /// What the platform sees of a run the guest reported: the status, the output (`done`) or the reason
    /// (`failed`), and the result JSON either way.
    public static func outcome(
        for result: RunResult, limits: ResourceLimits, vmm: String, bootMilliseconds: Int, queueMilliseconds: Int
    ) -> JobOutcome {
        var record = Self.record(for: result, vmm: vmm, bootMilliseconds: bootMilliseconds, queueMilliseconds: queueMilliseconds)
        switch Self.status(for: result, limits: limits) {
        case .done:
            return .done(stdout: Array(result.stdout), stderr: Array(result.stderr), result: record)
        case .failed(let reason):
            // The guest's message explains its verdict; the platform's reason is what a person acts on.
            record.message = reason
            return .failed(reason: reason, result: record)
        }
    }

    /// What the platform sees of a job whose VM failed (could not boot, died, or outlived the host's bound):
    /// `failed` with ``reason(for:limits:)`` (any other error is quoted as a VM failure), and a result JSON
    /// that says where it happened.
    public static func outcome(for error: any Error, limits: ResourceLimits, vmm: String, queueMilliseconds: Int) -> JobOutcome {
        let reason = (error as? VMError).map { Self.reason(for: $0, limits: limits) } ?? "VM failure: \(error)"
        return .failed(reason: reason, result: JobResultRecord(message: reason, vmm: vmm, queueMilliseconds: queueMilliseconds))
    }

    /// The result JSON of a run: the guest's verdict and measurements, and where and after how long it ran.
    static func record(for run: RunResult, vmm: String, bootMilliseconds: Int, queueMilliseconds: Int) -> JobResultRecord {
        judged(
            verdict: run.verdict.rawValue, exitCode: run.exitCode, signal: run.signal,
            wallMilliseconds: run.wallTimeMilliseconds, cpuMilliseconds: run.cpuTimeMilliseconds,
            peakMemoryBytes: run.peakMemoryBytes, stdoutTruncated: run.stdoutTruncated,
            stderrTruncated: run.stderrTruncated,
            // Compiler output is text for a person; bytes that are not UTF-8 cannot go in JSON as they are.
            compileOutput: run.compileOutput.map { String(decoding: $0, as: UTF8.self) },
            message: run.message, vmm: vmm, bootMilliseconds: bootMilliseconds, queueMilliseconds: queueMilliseconds,
            tests: run.tests)
    }

    /// The reason for a job whose VM failed (the platform could not run it).
    public static func reason(for error: VMError, limits: ResourceLimits) -> String {
        if error.code == .hostTimeout {
            return timeLimitReason(limits) + " (the VM did not stop and was destroyed)"
        }
        return "VM failure: \(clip(error.message, 500))"
    }

    /// "time limit of 5 s exceeded", "time limit of 2.5 s exceeded".
    public static func timeLimitReason(_ limits: ResourceLimits) -> String {
        let ms = limits.wallTimeMilliseconds
        let seconds = ms % 1000 == 0 ? "\(ms / 1000)" : trimmedDecimal(Double(ms) / 1000)
        return "time limit of \(seconds) s exceeded"
    }

    static func formatMiB(_ bytes: Int) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : trimmedDecimal(Double(bytes) / Double(1 << 20)) + " MiB"
    }

    private static func trimmedDecimal(_ value: Double) -> String {
        var text = String(Double((value * 1000).rounded()) / 1000)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    private static func clip(_ text: String, _ maximum: Int) -> String {
        text.count <= maximum ? text : String(text.prefix(maximum)) + "…"
    }
}
