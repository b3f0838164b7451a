import AgentProtocol
import Foundation
import Judging
import Testing

/// Judge mode in the real agent binary, host test mode (unconfined, so no cgroup limits): per-case runs,
/// comparisons, stop on failure, the checker convention, files and arguments, and fresh copies per case.
@Suite(.serialized, .enabled(if: HostAgent.binaryPath != nil, "codebench-agent is not built next to the test bundle"))
struct AgentHostModeJudgeTests {
    static let limits = ResourceLimits(wallTimeMilliseconds: 5000)

    @Test func judgesEachCaseAndStopsOnFailureWhenAsked() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let tests = ["1", "2", "3"].map { TestCase(name: "c\($0)", stdin: Data("\($0)\n".utf8), expectedOutput: Data("\($0)\n".utf8), limits: Self.limits) }
            + [TestCase(name: "wrong", stdin: Data("4\n".utf8), expectedOutput: Data("5\n".utf8), limits: Self.limits),
               TestCase(name: "after", stdin: Data("6\n".utf8), expectedOutput: Data("6\n".utf8), limits: Self.limits)]
        // The second case's file is written in the first case's directory: a copy per case must not show it.
        let command = #"cat; if [ -e left ]; then echo leaked >&2; fi; touch left"#
        let all = try agent.run(RunRequest(id: "j", workload: .shell(command: command), limits: Self.limits, judge: JudgeSpec(tests: tests)))
        #expect(all.verdict == .wrongAnswer)
        #expect(all.tests?.map(\.verdict) == [.accepted, .accepted, .accepted, .wrongAnswer, .accepted])
        #expect(all.tests?.allSatisfy { $0.stderr.isEmpty } == true, "a case saw another case's file")
        #expect(String(decoding: all.stdout, as: UTF8.self) == "4\n", "the failing case's output is the job's")
        #expect(all.message?.hasPrefix("4 of 5 tests passed; test 'wrong'") == true, "\(all.message ?? "")")

        let stopped = try agent.run(RunRequest(
            id: "s", workload: .shell(command: "cat"), limits: Self.limits, judge: JudgeSpec(tests: tests, stopOnFailure: true)))
        #expect(stopped.tests?.map(\.verdict) == [.accepted, .accepted, .accepted, .wrongAnswer, .skipped])
    }

    @Test func comparesByTheChosenModeAndBoundsCaseOutput() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        func verdict(_ comparison: Comparison, printing output: String, expected: String) throws -> Verdict? {
            let test = TestCase(name: "x", stdin: Data(output.utf8), expectedOutput: Data(expected.utf8), limits: Self.limits)
            let result = try agent.run(RunRequest(
                id: "c", workload: .shell(command: "cat"), limits: Self.limits, judge: JudgeSpec(tests: [test], comparison: comparison)))
            return result.tests?.first?.verdict
        }
        #expect(try verdict(.trimmed, printing: "a b  \n\n", expected: "a b") == .accepted)
        #expect(try verdict(.exact, printing: "a b  \n\n", expected: "a b") == .wrongAnswer)
        #expect(try verdict(.tokens, printing: "a\n\n b", expected: "a b\n") == .accepted)
        #expect(try verdict(.float(epsilon: 1e-3), printing: "3.1416", expected: "3.14159") == .accepted)
        #expect(try verdict(.float(epsilon: 1e-3), printing: "3.15", expected: "3.14159") == .wrongAnswer)

        let long = try agent.run(RunRequest(
            id: "l", workload: .shell(command: "head -c 10000 /dev/zero | tr '\\0' x"), limits: Self.limits,
            judge: JudgeSpec(tests: [TestCase(name: "long", limits: Self.limits)], caseOutputBytes: 100)))
        #expect(long.tests?.first?.stdout.count == 100)
        #expect(long.tests?.first?.stdoutTruncated == true)
        #expect(long.stdout.count == 10000, "the job's own stdout keeps up to the output limit")
    }

    @Test func runsTheCheckerByItsConvention() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        // Accepts any order of the expected lines: sort both and compare; exit 1 otherwise.
        let checker = CheckerSpec(language: .bash, source: #"[ "$(sort "$2")" = "$(sort "$3")" ] || { echo "lines differ" >&2; exit 1; }"#)
        let tests = [
            TestCase(name: "shuffled", stdin: Data("b\na\n".utf8), expectedOutput: Data("a\nb\n".utf8), limits: Self.limits),
            TestCase(name: "wrong", stdin: Data("a\nc\n".utf8), expectedOutput: Data("a\nb\n".utf8), limits: Self.limits),
        ]
        let judged = try agent.run(RunRequest(
            id: "k", workload: .shell(command: "cat"), limits: Self.limits, judge: JudgeSpec(tests: tests, checker: checker)))
        #expect(judged.tests?.map(\.verdict) == [.accepted, .wrongAnswer])
        #expect(judged.tests?.last?.message == "checker: lines differ")

        let crashing = CheckerSpec(language: .bash, source: "exit 7")
        let failed = try agent.run(RunRequest(
            id: "x", workload: .shell(command: "cat"), limits: Self.limits, judge: JudgeSpec(tests: tests, checker: crashing)))
        #expect(failed.verdict == .internalError)
        #expect(failed.tests?.map(\.verdict) == [.internalError, .internalError])
        #expect(failed.tests?.first?.message?.hasPrefix("checker failed: exited with code 7") == true)
    }

    @Test func writesFilesAndPassesArguments() throws {
        let agent = try HostAgent()
        defer { agent.stop() }
        _ = try agent.receive()
        let files = [
            WorkFile(name: "main.sh", content: Data(#"source lib/util.sh; greet "$@"; cat data/in.txt"#.utf8)),
            WorkFile(name: "lib/util.sh", content: Data(#"greet() { echo "hello $1 ($#)"; }"#.utf8)),
            WorkFile(name: "data/in.txt", content: Data("data\n".utf8)),
        ]
        let result = try agent.run(RunRequest(
            id: "f", workload: .project(language: .bash, entry: "main.sh"), limits: Self.limits, files: files,
            arguments: ["world", "x y"]))
        #expect(result.verdict == .ok, "\(result.message ?? "")")
        #expect(String(decoding: result.stdout, as: UTF8.self) == "hello world (2)\ndata\n")

        let shell = try agent.run(RunRequest(id: "a", workload: .shell(command: #"echo "$1|$2""#), limits: Self.limits, arguments: ["p", "q r"]))
        #expect(String(decoding: shell.stdout, as: UTF8.self) == "p|q r\n")
    }
}

extension HostAgent {
    func run(_ request: RunRequest) throws -> RunResult {
        try send(try AgentFrame.encode(.run(request)))
        let message = try receive()
        guard case .result(let result) = message else { throw HostAgentError(message: "expected a result, got \(message)") }
        return result
    }
}
