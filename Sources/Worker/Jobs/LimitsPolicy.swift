import AgentProtocol
import JobQueue
import Languages

extension WorkerConfiguration {
    /// The limits a job actually runs with: what it asked for, else the operator's default, never
    /// above the operator's maximum. `timeout_ms` bounds the wall time like `limits.wall_time_ms`
    /// (the smaller one wins).
    public func effectiveLimits(for job: JobRequest) -> ResourceLimits {
        let requestedWall = [job.limits.wallTimeMilliseconds, job.timeoutMilliseconds].compactMap { $0 }.min()
        var defaults = defaultLimits
        defaults.compileWallTimeMilliseconds = judge.defaultCompileWallTimeMilliseconds
        defaults.compileMemoryBytes = judge.defaultCompileMemoryBytes
        var requested = job.limits
        requested.wallTimeMilliseconds = requestedWall
        return clamp(requested, defaults: defaults)
    }

    /// The limits of a job that asks for none: what snapshots and warm VMs prepare jobs for
    /// (``MicroVM/VMConfiguration/expectedJobLimits``).
    public var expectedJobLimits: ResourceLimits {
        var defaults = defaultLimits
        defaults.compileWallTimeMilliseconds = judge.defaultCompileWallTimeMilliseconds
        defaults.compileMemoryBytes = judge.defaultCompileMemoryBytes
        return clamp(JobRequest.RequestedLimits(), defaults: defaults)
    }

    /// A test case's limits: what the case asked for, else the job's own (already clamped), never above
    /// the operator's maximums.
    public func effectiveLimits(for test: JobTestCase, job jobLimits: ResourceLimits) -> ResourceLimits {
        clamp(test.limits, defaults: jobLimits)
    }

    private func clamp(_ requested: JobRequest.RequestedLimits, defaults: ResourceLimits) -> ResourceLimits {
        func optional(_ asked: Int?, _ fallback: Int?, _ maximum: Int) -> Int? {
            (asked ?? fallback).map { min($0, maximum) }
        }
        func mebibytes(_ value: Int?) -> Int? {
            value.map { $0.multipliedReportingOverflow(by: 1 << 20) }.map { $0.overflow ? Int.max : $0.partialValue }
        }
        return ResourceLimits(
            wallTimeMilliseconds: min(requested.wallTimeMilliseconds ?? defaults.wallTimeMilliseconds, maximumLimits.wallTimeMilliseconds),
            memoryBytes: min(requested.memoryBytes ?? defaults.memoryBytes, maximumLimits.memoryBytes),
            maxProcesses: min(requested.processes ?? defaults.maxProcesses, maximumLimits.maxProcesses),
            maxOutputBytesPerStream: min(
                requested.outputBytes ?? defaults.maxOutputBytesPerStream, maximumLimits.maxOutputBytesPerStream),
            cpuTimeMilliseconds: optional(
                requested.cpuTimeMilliseconds, defaults.cpuTimeMilliseconds, judge.maximumCPUTimeMilliseconds),
            maxFileSizeBytes: optional(mebibytes(requested.maxFileSizeMiB), defaults.maxFileSizeBytes, judge.maximumFileSizeBytes),
            compileWallTimeMilliseconds: optional(
                requested.compileWallTimeMilliseconds, defaults.compileWallTimeMilliseconds,
                judge.maximumCompileWallTimeMilliseconds),
            compileMemoryBytes: optional(
                mebibytes(requested.compileMemoryMiB), defaults.compileMemoryBytes, judge.maximumCompileMemoryBytes)
        )
    }

    /// The host-side bound for one run: the wall limit plus the margin (compiled languages get the
    /// wall limit twice, since the agent bounds compilation by the same value).
    public func hostTimeout(for limits: ResourceLimits, workload: Workload) -> Duration {
        hostTimeout(for: RunRequest(id: "-", workload: workload, limits: limits))
    }

    /// The host-side bound for a whole request: every step the agent may run, each at its wall limit,
    /// plus the margin. Judge mode adds each case, its checker run and a second per case for the fresh
    /// working copy (under TCG a copy of a compiled program takes a noticeable fraction of one).
    public func hostTimeout(for request: RunRequest) -> Duration {
        let limits = request.limits
        func compile(_ language: Language?) -> Int {
            // A language the registry does not know counts as compiled: a longer bound, never a premature kill.
            guard let language, languages.language(named: language.rawValue)?.compiles ?? true else { return 0 }
            return limits.compileWallTimeMilliseconds ?? limits.wallTimeMilliseconds
        }
        var milliseconds = compile(request.workload.language)
        if let judge = request.judge {
            let checker = judge.checker.map { _ in judge.checkerLimits.wallTimeMilliseconds } ?? 0
            milliseconds += compile(judge.checker?.language)
            milliseconds += judge.tests.reduce(0) { $0 + $1.limits.wallTimeMilliseconds + checker + 1000 }
        } else {
            milliseconds += limits.wallTimeMilliseconds
        }
        return .milliseconds(milliseconds) + hostTimeoutMargin
    }
}

extension Workload {
    /// The language of a program, nil for a shell command.
    var language: Language? {
        switch self {
        case .shell: nil
        case .program(let language, _), .project(let language, _): language
        }
    }
}
