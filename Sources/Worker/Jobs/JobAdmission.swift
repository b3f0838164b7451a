import AgentProtocol
import Foundation
import JobQueue

/// Turns a parsed job into the request its VM will run, refusing before any VM boots what the guest
/// agent would refuse (``RequestRules``): a boot costs far more than a check, and the agent's answer
/// would come back as a VM-level error instead of a reason that names the job's field.
///
/// Two passes, because the Worker changes a job's limits on the way:
/// 1. the values as the job sent them (sizes, characters, and each requested limit against its minimum),
///    so a reason names the field the job used (`limits.memory_mb`, `timeout_ms`);
/// 2. the request after the operator's defaults and maximums are applied, with every rule the agent
///    checks (``RequestRules/problem(request:)``).
enum JobAdmission {
    /// Why a job will not be run; ``reason`` is what the platform reads after `failed`.
    struct Refusal: Error, Equatable {
        /// `invalid job: field 'limits.memory_bytes' must be at least 16777216`.
        var reason: String

        init(_ problem: String) { reason = "invalid job: " + problem }
    }

    /// The request for `job`, run with `limits` (the job's own, defaulted and clamped), or why the agent
    /// would refuse it.
    static func request(for job: JobRequest, limits: ResourceLimits) -> Result<RunRequest, Refusal> {
        let workload = job.workload.agentWorkload
        if let problem = problem(asSent: job, workload: workload) { return .failure(Refusal(problem)) }
        let request = RunRequest(id: job.id, workload: workload, stdin: Data(job.stdin), limits: limits)
        if let problem = RequestRules.problem(request: request) { return .failure(Refusal(problem)) }
        return .success(request)
    }

    /// The rules for values as the job sent them, first problem found.
    private static func problem(asSent job: JobRequest, workload: Workload) -> String? {
        let requested = job.limits
        return RequestRules.problem(id: job.id)
            ?? RequestRules.problem(workload: workload)
            ?? RequestRules.problem(stdin: job.stdin)
            ?? requested.wallTimeMilliseconds.flatMap(RequestRules.problem(requestedWallTimeMilliseconds:))
            ?? job.timeoutMilliseconds.flatMap(RequestRules.problem(requestedWallTimeMilliseconds:)).map {
                // `timeout_ms` bounds the same limit as `limits.wall_time_ms`: name the field the job used.
                $0.replacingOccurrences(of: "'\(RequestRules.Field.wallTime)'", with: "'timeout_ms'")
            }
            ?? memoryProblem(requested)
            ?? requested.processes.flatMap(RequestRules.problem(requestedProcesses:))
            ?? requested.outputBytes.flatMap(RequestRules.problem(requestedOutputBytes:))
    }

    /// Memory in the unit the job gave it (`memory_mb` or `memory_bytes`).
    private static func memoryProblem(_ requested: JobRequest.RequestedLimits) -> String? {
        if let mebibytes = requested.memoryMiB { return RequestRules.problem(requestedMemoryMiB: mebibytes) }
        return requested.memoryBytes.flatMap(RequestRules.problem(requestedMemoryBytes:))
    }
}
