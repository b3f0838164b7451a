import AgentProtocol
import JobQueue

extension WorkerConfiguration {
    /// The limits a job actually runs with: what it asked for, else the operator's default, never
    /// above the operator's maximum. `timeout_ms` bounds the wall time like `limits.wall_time_ms`
    /// (the smaller one wins).
    public func effectiveLimits(for job: JobRequest) -> ResourceLimits {
        let requestedWall = [job.limits.wallTimeMilliseconds, job.timeoutMilliseconds].compactMap { $0 }.min()
        return ResourceLimits(
            wallTimeMilliseconds: min(requestedWall ?? defaultLimits.wallTimeMilliseconds, maximumLimits.wallTimeMilliseconds),
            memoryBytes: min(job.limits.memoryBytes ?? defaultLimits.memoryBytes, maximumLimits.memoryBytes),
            maxProcesses: min(job.limits.processes ?? defaultLimits.maxProcesses, maximumLimits.maxProcesses),
            maxOutputBytesPerStream: min(
                job.limits.outputBytes ?? defaultLimits.maxOutputBytesPerStream, maximumLimits.maxOutputBytesPerStream)
        )
    }

    /// The host-side bound for one run: the wall limit plus the margin (compiled languages get the
    /// wall limit twice, since the agent bounds compilation by the same value).
    public func hostTimeout(for limits: ResourceLimits, workload: Workload) -> Duration {
        var wall = Duration.milliseconds(limits.wallTimeMilliseconds)
        if case .program(let language, _) = workload, language == .c || language == .cpp {
            wall = wall * 2
        }
        return wall + hostTimeoutMargin
    }
}
