import AgentProtocol
import Foundation
import JobQueue
import Testing

@testable import Worker

/// Judge mode's policies on the host: compiler options, case count, case limits, the host's bound and
/// what the platform sees of a judged run. No VM.
@Suite("Judge mode: admission and outcome")
struct JudgeAdmissionTests {
    static func job(_ payload: String) throws -> JobRequest { try JobParser().parse(payload).get() }

    static func refusal(_ payload: String, _ configure: (inout WorkerConfiguration) -> Void = { _ in }) throws -> String? {
        var configuration = WorkerConfiguration()
        configure(&configuration)
        let job = try job(payload)
        switch JobAdmission.request(for: job, limits: configuration.effectiveLimits(for: job), configuration: configuration) {
        case .failure(let refusal): return refusal.reason
        case .success: return nil
        }
    }

    static let optionsJob = #"{"id":"o","language":"c","code":"int main(){}","compiler_options":"-O2 -DLOCAL"}"#

    @Test("compiler_options: refused unless enabled, refused outside the allow-list, honoured inside it")
    func compilerOptions() throws {
        #expect(try Self.refusal(Self.optionsJob) == "invalid job: field 'compiler_options' is not allowed on this worker")
        let enabled: (inout WorkerConfiguration) -> Void = { $0.judge.allowCompilerOptions = true }
        #expect(try Self.refusal(Self.optionsJob, enabled) == nil)
        #expect(
            try Self.refusal(#"{"id":"o","language":"c","code":"","compiler_options":["-O2","-fplugin=/tmp/x.so"]}"#, enabled)
                == "invalid job: field 'compiler_options' has '-fplugin=/tmp/x.so', which is not allowed for c "
                + "(allowed prefixes: -O -D -U -std= -W -g -lm -march=native -pedantic)")
        #expect(
            try Self.refusal(#"{"id":"o","language":"python","code":"","compiler_options":"-O"}"#, enabled)
                == "invalid job: field 'compiler_options' is not allowed for python: it has no compile step")
        // The operator's extension of the list, through the setting.
        var configuration = WorkerConfiguration()
        configuration.judge.allowCompilerOptions = true
        try WorkerSetting.named("compiler-option-prefixes")!.apply(&configuration, "c:-fplugin=")
        let job = try Self.job(#"{"id":"o","language":"c","code":"","compiler_options":["-fplugin=x.so"]}"#)
        let request = try JobAdmission.request(for: job, limits: configuration.effectiveLimits(for: job), configuration: configuration).get()
        #expect(request.compilerOptions == ["-fplugin=x.so"])
    }

    @Test("more cases than the operator allows are refused; case limits clamp like a job's")
    func casesAndLimits() throws {
        let payload = #"{"id":"t","command":"cat","limits":{"wall_time_ms":3000,"cpu_time_ms":999999},"tests":[{"limits":{"wall_time_ms":999999,"memory_mb":32}},{},{"stdin":"own","args":["x"]}],"stdin":"job","args":["a"]}"#
        #expect(try Self.refusal(payload) { $0.judge.maximumTests = 2 } == "invalid job: field 'tests' has 3 cases, the maximum is 2")
        #expect(
            try Self.refusal(#"{"id":"t","command":"cat","tests":[{},{"limits":{"memory_mb":8}}]}"#)
                == "invalid job: field 'tests[1].limits.memory_mb' must be at least 16")
        let configuration = WorkerConfiguration()
        let job = try Self.job(payload)
        let limits = configuration.effectiveLimits(for: job)
        #expect(limits.cpuTimeMilliseconds == configuration.judge.maximumCPUTimeMilliseconds)
        let request = try JobAdmission.request(for: job, limits: limits, configuration: configuration).get()
        let tests = try #require(request.judge?.tests)
        #expect(tests.map(\.name) == ["1", "2", "3"])
        #expect(tests[0].limits.wallTimeMilliseconds == configuration.maximumLimits.wallTimeMilliseconds)
        #expect(tests[0].limits.memoryBytes == 32 << 20)
        #expect(tests[1].limits == limits, "a case without limits runs with the job's")
        #expect(tests.map { String(decoding: $0.stdin, as: UTF8.self) } == ["job", "job", "own"])
        #expect(tests.map(\.arguments) == [["a"], ["a"], ["x"]])
        #expect(request.judge?.caseOutputBytes == 4096)
        // The host waits for every case at its wall limit (plus a second each for its copy), and its margin.
        let expected = Duration.milliseconds(60_000 + 3000 + 3000 + 3 * 1000) + configuration.hostTimeoutMargin
        #expect(configuration.hostTimeout(for: request) == expected)
    }

    @Test("a judged run is done with its cases in the result JSON; a compile error still fails")
    func outcome() throws {
        let cases = [
            TestResult(name: "a", verdict: .accepted, exitCode: 0, stdout: Data("1\n".utf8)),
            TestResult(name: "b", verdict: .wrongAnswer, exitCode: 0, stdout: Data("3\n".utf8), message: "output differs"),
            TestResult(name: "c", verdict: .skipped),
        ]
        let run = RunResult(
            id: "j", verdict: .wrongAnswer, exitCode: 0, signal: nil, stdout: Data("3\n".utf8), stderr: Data(),
            stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 5, cpuTimeMilliseconds: 1,
            peakMemoryBytes: 1, message: "1 of 3 tests passed", tests: cases)
        let limits = ResourceLimits(cpuTimeMilliseconds: 1500)
        guard case .done(let stdout, _, let record) = OutcomePolicy.outcome(
            for: run, limits: limits, vmm: "qemu", bootMilliseconds: 1, queueMilliseconds: 1
        ).reporting(limits) else {
            Issue.record("not done")
            return
        }
        #expect(stdout == Array("3\n".utf8))
        #expect(record.verdict == "wrong_answer")
        #expect(record.passed == 1 && record.total == 3)
        #expect(record.tests?.map(\.verdict) == ["accepted", "wrong_answer", "skipped"])
        #expect(record.limits?.cpuTimeMilliseconds == 1500)
        let json = try #require(JSONSerialization.jsonObject(with: Data(record.json().utf8)) as? [String: Any])
        let first = try #require((json["tests"] as? [[String: Any]])?.first)
        #expect(first["name"] as? String == "a" && first["stdout"] as? String == "1\n" && first["wall_ms"] as? Int == 0)

        var compile = run
        compile.verdict = .compileError
        compile.compileOutput = Data("main.c:1: error: nope".utf8)
        #expect(OutcomePolicy.status(for: compile, limits: limits) == .failed(reason: "compile error: main.c:1: error: nope"))
        var cpu = run
        cpu.tests = nil
        cpu.verdict = .cpuTimeLimit
        #expect(OutcomePolicy.status(for: cpu, limits: limits) == .failed(reason: "cpu time limit of 1.5 s exceeded"))
    }
}
