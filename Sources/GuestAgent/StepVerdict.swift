import AgentProtocol
import Glibc

/// What a finished step means for the program, before any output is judged.
enum StepVerdict {
    /// The verdict and its sentence, checked in the documented order (docs/agent-protocol.md, "Verdicts");
    /// `.ok` (no message) when the step exited 0 within every limit.
    static func classify(_ outcome: StepOutcome, _ limits: ResourceLimits) -> (Verdict, String?) {
        if outcome.outputOverflow {
            let stream = outcome.stdoutTruncated ? "stdout" : "stderr"
            return (.outputLimit, "output limit of \(Format.bytes(limits.maxOutputBytesPerStream)) exceeded on \(stream)")
        }
        if outcome.timedOut {
            return (.timeLimit, "time limit of \(Format.duration(milliseconds: limits.wallTimeMilliseconds)) exceeded")
        }
        if outcome.cpuTimedOut {
            return (.cpuTimeLimit, "cpu time limit of \(Format.duration(milliseconds: limits.cpuTimeMilliseconds ?? 0)) exceeded")
        }
        if outcome.oomKilled { return (.memoryLimit, "memory limit of \(Format.bytes(limits.memoryBytes)) exceeded") }
        if let signal = outcome.signal {
            let killed = "killed by signal \(signal) (\(SignalNames.name(signal)))"
            // SIGXFSZ under max_file_size_mb is the limit at work: say which, as the other limits do.
            if signal == SIGXFSZ, let maximum = limits.maxFileSizeBytes {
                return (.runtimeError, killed + ": file size limit of \(Format.bytes(maximum)) exceeded")
            }
            return (.runtimeError, killed)
        }
        if let code = outcome.exitCode, code != 0 { return (.runtimeError, "exited with code \(code)") }
        return (.ok, nil)
    }
}
