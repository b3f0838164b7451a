import Foundation

/// A finished child process: its exit status and what it wrote.
struct ChildProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments` to its end, reading stdout and stderr apart (both drained while it runs, so a
/// full pipe never blocks it). A child still running after `timeout` is killed, and its result says 137.
func runChildProcess(
    _ executable: String, _ arguments: [String], timeout: Duration = .seconds(120)
) async throws -> ChildProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let stdout = Task.detached { output.fileHandleForReading.readDataToEndOfFile() }
    let stderr = Task.detached { errors.fileHandleForReading.readDataToEndOfFile() }
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            kill(process.processIdentifier, SIGKILL)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return ChildProcessResult(
        status: process.terminationStatus, stdout: String(decoding: await stdout.value, as: UTF8.self),
        stderr: String(decoding: await stderr.value, as: UTF8.self))
}

/// `codebench-worker <arguments>`, the binary built beside the tests.
func runCodebenchWorker(_ arguments: [String]) async throws -> ChildProcessResult {
    try await runChildProcess(WorkerProcess.binary, arguments)
}
