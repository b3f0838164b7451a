import AgentProtocol
import Foundation
import JobQueue
import Languages
import MicroVM
import Testing

@testable import Worker

@Suite("Outcome and limits policy")
struct OutcomePolicyTests {
    let limits = ResourceLimits(wallTimeMilliseconds: 5000, memoryBytes: 64 << 20, maxProcesses: 8, maxOutputBytesPerStream: 1024)

    func result(_ verdict: Verdict, exitCode: Int32? = 0, signal: Int32? = nil, compileOutput: String? = nil) -> RunResult {
        RunResult(
            id: "1", verdict: verdict, exitCode: exitCode, signal: signal, stdout: Data("out".utf8), stderr: Data("err".utf8),
            stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 10, cpuTimeMilliseconds: 5,
            peakMemoryBytes: 1 << 20, compileOutput: compileOutput.map { Data($0.utf8) })
    }

    @Test("a program that ran is done whatever its exit code")
    func ranIsDone() {
        #expect(OutcomePolicy.status(for: result(.ok), limits: limits) == .done)
        #expect(OutcomePolicy.status(for: result(.runtimeError, exitCode: 3), limits: limits) == .done)
    }

    @Test("limits give a reason a person can act on")
    func limitReasons() {
        #expect(OutcomePolicy.status(for: result(.timeLimit), limits: limits) == .failed(reason: "time limit of 5 s exceeded"))
        #expect(
            OutcomePolicy.status(for: result(.memoryLimit), limits: limits) == .failed(reason: "memory limit of 64 MiB exceeded"))
        #expect(
            OutcomePolicy.status(for: result(.outputLimit, exitCode: nil, signal: 9), limits: limits)
                == .failed(reason: "output limit of 1024 bytes exceeded"))
        // Output cut but the program exited by itself: it ran, the flags say what was lost.
        #expect(OutcomePolicy.status(for: result(.outputLimit, exitCode: 0), limits: limits) == .done)
        var fractional = limits
        fractional.wallTimeMilliseconds = 2500
        #expect(OutcomePolicy.timeLimitReason(fractional) == "time limit of 2.5 s exceeded")
    }

    @Test("a compile error fails with the compiler's first error line, all of its output in the result JSON")
    func compileError() {
        let output = "main.c: In function 'main':\nmain.c:1:1: error: unknown type name 'foo'\n    1 | foo bar;\n"
        let outcome = OutcomePolicy.outcome(
            for: result(.compileError, exitCode: 1, compileOutput: output), limits: limits, vmm: "qemu-tcg", bootMilliseconds: 1,
            queueMilliseconds: 0)
        guard case .failed(let reason, let record) = outcome else {
            Issue.record("expected failed, got \(outcome)")
            return
        }
        #expect(reason == "compile error: main.c:1:1: error: unknown type name 'foo'")
        #expect(record?.compileOutput == output)
        #expect(record?.verdict == "compile_error")
    }

    @Test("a compiler killed at its limit fails with the agent's reason, not with an error line of the cut output")
    func compilerStopped() {
        var stopped = result(.compileError, exitCode: nil, signal: 9, compileOutput: "In file included from main.cpp:1:\n")
        stopped.message = "compilation exceeded the time limit of 300 ms"
        #expect(
            OutcomePolicy.status(for: stopped, limits: limits)
                == .failed(reason: "compile error: compilation exceeded the time limit of 300 ms"))
        // A compiler that exited by itself still reports its own error line, whatever the agent's summary.
        var exited = result(.compileError, exitCode: 1, compileOutput: "main.c:1:1: error: expected ';'\n")
        exited.message = "compilation failed (exit code 1)"
        #expect(OutcomePolicy.status(for: exited, limits: limits) == .failed(reason: "compile error: main.c:1:1: error: expected ';'"))
    }

    @Test("a host timeout is reported as the time limit")
    func hostTimeout() {
        let reason = OutcomePolicy.reason(for: VMError(.hostTimeout, "no result after 10 s"), limits: limits)
        #expect(reason.hasPrefix("time limit of 5 s exceeded"))
        #expect(OutcomePolicy.reason(for: VMError(.bootFailed, "qemu exited with 1"), limits: limits) == "VM failure: qemu exited with 1")
    }

    @Test("every name and alias of the registry parses to its canonical language, sent to the guest under that name")
    func languagesMatch() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("guest/languages.json").path
        let registry = try #require(try LanguageRegistry.load(path: path))
        let parser = JobParser(languages: registry.jobCatalog)
        for definition in registry.languages {
            for name in [definition.name] + definition.aliases + [definition.name.uppercased()] {
                let payload = #"{"id":"l","language":"\#(name)","code":"x"}"#
                guard case .success(let job) = parser.parse(payload), case .program(let language, _) = job.workload else {
                    Issue.record("\(name) does not parse: \(parser.parse(payload))")
                    continue
                }
                #expect(language.agentLanguage == Language(definition.name))
                #expect(language.defaultEntry == definition.source)
            }
        }
        guard case .failure(let invalid) = parser.parse(#"{"id":"l","language":"cobol","code":"x"}"#) else {
            Issue.record("an unknown language must be refused")
            return
        }
        #expect(invalid.reason.contains("known: python, c, cpp, bash, javascript"))
        // The classic catalog (no image registry) still knows exactly the four it always knew.
        #expect(JobParser().languages.knownList == "python, c, cpp, bash")
    }

    @Test("requested limits are clamped to the operator's maximum, missing ones defaulted")
    func clamping() {
        var configuration = WorkerConfiguration()
        configuration.maximumLimits = ResourceLimits(
            wallTimeMilliseconds: 10_000, memoryBytes: 128 << 20, maxProcesses: 16, maxOutputBytesPerStream: 4096)
        configuration.defaultLimits = ResourceLimits(
            wallTimeMilliseconds: 3000, memoryBytes: 64 << 20, maxProcesses: 8, maxOutputBytesPerStream: 1024)
        let job = JobRequest(
            id: "x", workload: .shell(command: "true"), timeoutMilliseconds: 60_000,
            limits: .init(memoryBytes: 1 << 30, processes: 4))
        let effective = configuration.effectiveLimits(for: job)
        #expect(effective.wallTimeMilliseconds == 10_000)
        #expect(effective.memoryBytes == 128 << 20)
        #expect(effective.maxProcesses == 4)
        #expect(effective.maxOutputBytesPerStream == 1024)
        let short = JobRequest(id: "y", workload: .shell(command: "true"), timeoutMilliseconds: 1500)
        #expect(configuration.effectiveLimits(for: short).wallTimeMilliseconds == 1500)
    }
}
