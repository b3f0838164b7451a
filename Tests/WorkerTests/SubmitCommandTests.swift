import Foundation
import Testing

@testable import Worker

/// `codebench-worker submit`, the binary built beside the tests, against a worker with a real VM.
@Suite("The submit command", .serialized)
struct SubmitCommandTests {
    /// Runs `codebench-worker <arguments>`; its exit status and standard output.
    func codebenchWorker(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: WorkerProcess.binary)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Read before waiting: a full pipe would block the child.
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Several words after `--` are quoted one by one: this once sent `sh -c echo hi; exit 4`, whose `sh -c echo`
    /// prints an empty line, instead of the command as typed.
    @Test func wordsAfterTheTerminatorAreQuotedAsTyped() async throws {
        try await WorkerHarness.with { harness in
            let (status, output) = try await codebenchWorker([
                "submit", "--redis-url", harness.redis.url, "--id", "submitted", "--", "sh", "-c", "echo hi; exit 4",
            ])
            #expect(output.contains("--- stdout ---\nhi\n"), "\(output)")
            #expect(output.contains(#""exit_code":4"#), "\(output)")
            #expect(status == 1, "done with a non-zero exit code exits 1: \(output)")
        }
    }

    /// `--stream` prints the output from the job's Redis stream as it arrives (before the terminal status),
    /// then the status as without it.
    @Test func streamPrintsTheOutputBeforeTheStatus() async throws {
        try await WorkerHarness.with { harness in
            let (status, output) = try await codebenchWorker([
                "submit", "--redis-url", harness.redis.url, "--id", "streamed", "--stream", "--", "echo one; sleep 1; echo two",
            ])
            let streamed = try #require(output.range(of: "one\ntwo\n--- end of streamed output (done) ---\n"), "\(output)")
            let final = try #require(output.range(of: "--- stdout ---\none\ntwo\n"), "\(output)")
            #expect(streamed.upperBound <= final.lowerBound, "the stream comes before the status: \(output)")
            #expect(status == 0, "\(output)")
        }
    }

    /// `--tests` sends the file's cases; the table has one line per case, named, with its verdict, and the
    /// exit code says not every case passed. `--expected` judges one case.
    @Test func judgedJobsPrintTheirCases() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("submit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let program = directory.appendingPathComponent("square.py").path
        let tests = directory.appendingPathComponent("tests.json").path
        try "n = int(input())\nprint(n * n)\n".write(toFile: program, atomically: true, encoding: .utf8)
        try #"[{"name":"two","stdin":"2","expected_output":"4"},{"name":"off-by-one","stdin":"3","expected_output":"10"},{"stdin":"12","expected_output":"144"}]"#
            .write(toFile: tests, atomically: true, encoding: .utf8)

        try await WorkerHarness.with { harness in
            let (status, output) = try await codebenchWorker([
                "submit", "--redis-url", harness.redis.url, "--id", "table", "--language", "python", "--file", program, "--tests", tests,
            ])
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.contains("--- tests: 2/3 passed ---"), "\(output)")
            let rows = lines.drop { !$0.hasPrefix("--- tests:") }.dropFirst(2).map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
            #expect(rows == ["two accepted", "off-by-one wrong_answer", "3 accepted"], "\(output)")
            #expect(output.contains("output differs from the expected output"), "the failing case's message: \(output)")
            #expect(status == 1, "a judged job with a failing case exits 1: \(output)")

            let (single, singleOutput) = try await codebenchWorker([
                "submit", "--redis-url", harness.redis.url, "--id", "one", "--language", "python", "--file", program,
                "--stdin", "7", "--expected", "49",
            ])
            #expect(singleOutput.contains("--- tests: 1/1 passed ---"), "\(singleOutput)")
            #expect(single == 0, "every case accepted exits 0: \(singleOutput)")
        }
    }
}
