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
}
