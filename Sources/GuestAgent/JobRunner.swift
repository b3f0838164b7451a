import AgentProtocol
import FoundationEssentials
import Glibc

/// Runs one ``RunRequest`` end to end: work directory, optional compile, run, verdict, clean-up.
final class JobRunner {
    let sandbox: Sandbox
    let reaper: ChildReaper
    private var jobCount = 0

    /// gcc forks cc1, as, collect2 and ld: a tiny maxProcesses must not turn into a confusing compile error.
    static let minimumCompileProcesses = 16
    /// g++ with <iostream> peaks near 70 MiB plus its own text pages; under a 64 MiB memory.max it thrashes
    /// on reclaiming them until the wall limit instead of failing. The limit is for the program, not the
    /// compiler, so compiles get at least this much (still bounded: a template bomb cannot take the VM).
    static let minimumCompileMemoryBytes = 192 << 20

    init(sandbox: Sandbox, reaper: ChildReaper) {
        self.sandbox = sandbox
        self.reaper = reaper
    }

    /// Never throws: every failure becomes a result with the `internal_error` verdict.
    func run(_ request: RunRequest) -> RunResult {
        jobCount += 1
        do {
            return try run(request, number: jobCount)
        } catch {
            Log.error("job \(Log.printable(request.id)): \(error)")
            return RunResult(
                id: request.id, verdict: .internalError, exitCode: nil, signal: nil, stdout: Data(), stderr: Data(),
                stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 0, cpuTimeMilliseconds: 0,
                peakMemoryBytes: 0, message: "agent failed: \(error)")
        }
    }

    private func run(_ request: RunRequest, number: Int) throws -> RunResult {
        let limits = request.limits
        let directory = try WorkDirectory.create(number: number, sizeBytes: limits.memoryBytes, sandbox: sandbox)
        defer {
            directory.remove()
            sandbox.removeJobLeftovers()
        }
        let stdinFD = try openStdin(request.stdin, number: number)
        defer { close(stdinFD) }
        let environment = [
            "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=\(directory.path)", "TMPDIR=\(directory.path)", "LANG=C.UTF-8",
        ] + GuestNetwork.jobEnvironment
        func step(_ name: String, _ argv: [String], stdin: Int32, memory: Int, processes: Int) throws -> StepOutcome {
            try StepRunner(sandbox: sandbox, reaper: reaper).run(StepSpec(
                name: name, argv: argv, environment: environment, directory: directory.path, stdinFD: stdin,
                wallTimeMilliseconds: limits.wallTimeMilliseconds, memoryBytes: memory,
                maxProcesses: processes, maxOutputBytesPerStream: limits.maxOutputBytesPerStream))
        }

        let argv: [String]
        switch request.workload {
        case .shell(let command):
            argv = ["bash", "-c", command]
        case .program(let language, let source):
            let recipe = language.recipe
            try directory.write(recipe.sourceFile, Array(source.utf8), sandbox: sandbox)
            if let compile = recipe.compile {
                let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard devNull >= 0 else { throw AgentError.system("open /dev/null") }
                defer { close(devNull) }
                let built = try step(
                    "job-\(number)-build", compile, stdin: devNull,
                    memory: max(limits.memoryBytes, JobRunner.minimumCompileMemoryBytes),
                    processes: max(limits.maxProcesses, JobRunner.minimumCompileProcesses))
                if !built.succeeded { return compileFailure(request, built) }
            }
            argv = recipe.run
        }
        let outcome = try step("job-\(number)", argv, stdin: stdinFD, memory: limits.memoryBytes, processes: limits.maxProcesses)
        return result(request, outcome)
    }

    /// Stdin is a file, not a pipe: no writer to schedule, and the job may seek. It lives outside the
    /// work directory and is unlinked at once, so only the open descriptor reaches the job.
    private func openStdin(_ bytes: Data, number: Int) throws -> Int32 {
        let path = "/tmp/codebench-agent-\(getpid())-stdin-\(number)"
        unlink(path)
        try Posix.writeFile(path, [UInt8](bytes), mode: 0o600)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        let openError = errno
        unlink(path)
        guard fd >= 0 else { throw AgentError.system("open \(path)", errno: openError) }
        return fd
    }

    private func result(_ request: RunRequest, _ outcome: StepOutcome) -> RunResult {
        let limits = request.limits
        let verdict: Verdict
        var message: String?
        if outcome.outputOverflow {
            verdict = .outputLimit
            let stream = outcome.stdoutTruncated ? "stdout" : "stderr"
            message = "output limit of \(Format.bytes(limits.maxOutputBytesPerStream)) exceeded on \(stream)"
        } else if outcome.timedOut {
            verdict = .timeLimit
            message = "time limit of \(Format.duration(milliseconds: limits.wallTimeMilliseconds)) exceeded"
        } else if outcome.oomKilled {
            verdict = .memoryLimit
            message = "memory limit of \(Format.bytes(limits.memoryBytes)) exceeded"
        } else if let signal = outcome.signal {
            verdict = .runtimeError
            message = "killed by signal \(signal) (\(SignalNames.name(signal)))"
        } else if let code = outcome.exitCode, code != 0 {
            verdict = .runtimeError
            message = "exited with code \(code)"
        } else {
            verdict = .ok
        }
        return RunResult(
            id: request.id, verdict: verdict, exitCode: outcome.exitCode, signal: outcome.signal,
            stdout: Data(outcome.stdout), stderr: Data(outcome.stderr),
            stdoutTruncated: outcome.stdoutTruncated, stderrTruncated: outcome.stderrTruncated,
            wallTimeMilliseconds: outcome.wallTimeMilliseconds, cpuTimeMilliseconds: outcome.cpuTimeMilliseconds,
            peakMemoryBytes: outcome.peakMemoryBytes, message: withSandboxNote(message))
    }

    private func compileFailure(_ request: RunRequest, _ outcome: StepOutcome) -> RunResult {
        let limits = request.limits
        let reason: String
        if outcome.timedOut {
            reason = "compilation exceeded the time limit of \(Format.duration(milliseconds: limits.wallTimeMilliseconds))"
        } else if outcome.oomKilled {
            reason = "compilation exceeded the memory limit of \(Format.bytes(max(limits.memoryBytes, JobRunner.minimumCompileMemoryBytes)))"
        } else if outcome.outputOverflow {
            reason = "compiler output exceeded \(Format.bytes(limits.maxOutputBytesPerStream))"
        } else if let signal = outcome.signal {
            reason = "compiler killed by signal \(signal) (\(SignalNames.name(signal)))"
        } else {
            reason = "compilation failed (exit code \(outcome.exitCode ?? -1))"
        }
        var diagnostics = outcome.stderr
        diagnostics.append(contentsOf: outcome.stdout.prefix(max(0, limits.maxOutputBytesPerStream - diagnostics.count)))
        return RunResult(
            id: request.id, verdict: .compileError, exitCode: outcome.exitCode, signal: outcome.signal,
            stdout: Data(), stderr: Data(outcome.stderr),
            stdoutTruncated: false, stderrTruncated: outcome.stderrTruncated,
            wallTimeMilliseconds: outcome.wallTimeMilliseconds, cpuTimeMilliseconds: outcome.cpuTimeMilliseconds,
            peakMemoryBytes: outcome.peakMemoryBytes, compileOutput: Data(diagnostics), message: withSandboxNote(reason))
    }

    private func withSandboxNote(_ message: String?) -> String? {
        guard let reason = sandbox.unconfinedReason else { return message }
        return message.map { "\($0) [unconfined: \(reason)]" } ?? "unconfined: \(reason)"
    }
}

/// Names for the signals a job typically dies of.
enum SignalNames {
    static func name(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
            SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
            SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
            SIGXCPU: "SIGXCPU", SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
