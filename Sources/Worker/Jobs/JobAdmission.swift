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
    /// would refuse it. `configuration` decides judge mode's policies (compiler options, case count,
    /// case limits).
    static func request(
        for job: JobRequest, limits: ResourceLimits, configuration: WorkerConfiguration = WorkerConfiguration()
    ) -> Result<RunRequest, Refusal> {
        let workload = job.workload.agentWorkload
        if let problem = problem(asSent: job, workload: workload) ?? policyProblem(job, workload, configuration.judge) {
            return .failure(Refusal(problem))
        }
        let request = RunRequest(
            id: job.id, workload: workload, stdin: Data(job.stdin), limits: limits,
            files: job.files.map { WorkFile(name: $0.name, content: Data($0.content)) }, arguments: job.arguments,
            compilerOptions: job.compilerOptions ?? [],
            judge: job.judge.map { judgeSpec($0, job: job, limits: limits, configuration) })
        if let problem = RequestRules.problem(request: request) { return .failure(Refusal(problem)) }
        return .success(request)
    }

    /// The rules for values as the job sent them, first problem found.
    private static func problem(asSent job: JobRequest, workload: Workload) -> String? {
        if let problem = RequestRules.problem(id: job.id) ?? RequestRules.problem(workload: workload)
            ?? RequestRules.problem(stdin: job.stdin)
        {
            return problem
        }
        if let timeout = job.timeoutMilliseconds, let problem = RequestRules.problem(requestedWallTimeMilliseconds: timeout) {
            // `timeout_ms` bounds the same limit as `limits.wall_time_ms`: name the field the job used.
            return problem.replacingOccurrences(of: "'\(RequestRules.Field.wallTime)'", with: "'timeout_ms'")
        }
        if let problem = limitsProblem(job.limits) { return problem }
        for (index, test) in (job.judge?.tests ?? []).enumerated() {
            if let problem = limitsProblem(test.limits) {
                return problem.replacingOccurrences(of: "field '", with: "field 'tests[\(index)].")
            }
        }
        return nil
    }

    /// Each requested limit against its minimum, in the unit the job used.
    private static func limitsProblem(_ requested: JobRequest.RequestedLimits) -> String? {
        requested.wallTimeMilliseconds.flatMap(RequestRules.problem(requestedWallTimeMilliseconds:))
            ?? memoryProblem(requested)
            ?? requested.processes.flatMap(RequestRules.problem(requestedProcesses:))
            ?? requested.outputBytes.flatMap(RequestRules.problem(requestedOutputBytes:))
            ?? requested.compileMemoryMiB.flatMap {
                $0 < RequestRules.minimumMemoryBytes >> 20
                    ? "field 'limits.compile_memory_mb' must be at least \(RequestRules.minimumMemoryBytes >> 20)" : nil
            }
    }

    /// Memory in the unit the job gave it (`memory_mb` or `memory_bytes`).
    private static func memoryProblem(_ requested: JobRequest.RequestedLimits) -> String? {
        if let mebibytes = requested.memoryMiB { return RequestRules.problem(requestedMemoryMiB: mebibytes) }
        return requested.memoryBytes.flatMap(RequestRules.problem(requestedMemoryBytes:))
    }

    /// The operator's judge policies: how many cases, and whether (and which) compiler options.
    private static func policyProblem(_ job: JobRequest, _ workload: Workload, _ judge: JudgeConfiguration) -> String? {
        if let tests = job.judge?.tests, tests.count > judge.maximumTests {
            return "field 'tests' has \(tests.count) cases, the maximum is \(judge.maximumTests)"
        }
        if let options = job.compilerOptions {
            return judge.problem(compilerOptions: options, language: workload.language)
        }
        return nil
    }

    /// The agent's view of judge mode: unnamed cases are named by position, and a case without its own
    /// stdin, arguments or limits takes the job's.
    private static func judgeSpec(
        _ judge: JobJudge, job: JobRequest, limits: ResourceLimits, _ configuration: WorkerConfiguration
    ) -> JudgeSpec {
        let tests = judge.tests.enumerated().map { index, test in
            TestCase(
                name: test.name ?? "\(index + 1)", stdin: Data(test.stdin ?? job.stdin),
                arguments: test.arguments ?? job.arguments, expectedOutput: test.expectedOutput.map { Data($0) },
                limits: configuration.effectiveLimits(for: test, job: limits))
        }
        return JudgeSpec(
            tests: tests, comparison: judge.comparison ?? .default,
            checker: judge.checker.map { CheckerSpec(language: $0.language.agentLanguage, source: $0.code) },
            stopOnFailure: judge.stopOnFailure, caseOutputBytes: configuration.judge.caseOutputBytes,
            checkerLimits: limits)
    }
}
