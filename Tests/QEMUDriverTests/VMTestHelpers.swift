import AgentProtocol
import FoundationEssentials
import Logging
import MicroVM
import QEMUDriver
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Shared set-up of the real-VM tests: a TCG driver (the KVM probe is tested on its own), a runtime
/// root private to this test process, and the cached image, which must exist.
enum VMTest {
    static let logger: Logger = {
        var logger = Logger(label: "test.qemu")
        logger.logLevel = getenv("CODEBENCH_TEST_LOG").map { Logger.Level(rawValue: String(cString: $0)) ?? .info } ?? .warning
        return logger
    }()

    static let driver = QEMUDriver(configuration: .init(accelerator: .tcg))

    /// Short, so socket paths fit sun_path; per process, so a census sees only our own VMs. The
    /// (then empty) directory is removed when the test process exits.
    static let runtimeRoot: String = {
        atexit { _ = rmdir(VMTest.runtimeRootPath) }
        return runtimeRootPath
    }()
    private static let runtimeRootPath = "/tmp/cbq-\(getpid())"

    /// The VM shape for a test; fails with build instructions when the image is missing.
    static func configuration(memoryMiB: Int = 256) throws -> VMConfiguration {
        VMConfiguration(image: try GuestImageFixture.require(), memoryMiB: memoryMiB, bootTimeout: .seconds(30), runtimeDirectory: runtimeRoot)
    }

    static func request(
        _ command: String, stdin: String = "", wallMs: Int = 10_000, memory: Int = 256 << 20, processes: Int = 64,
        output: Int = 1 << 20
    ) -> RunRequest {
        RunRequest(
            id: "t-\(UInt32.random(in: 0...UInt32.max))", workload: .shell(command: command), stdin: Data(stdin.utf8),
            limits: ResourceLimits(wallTimeMilliseconds: wallMs, memoryBytes: memory, maxProcesses: processes, maxOutputBytesPerStream: output))
    }

    /// Boots a VM, runs one request with a host timeout of the wall limit plus 10 s, destroys the VM.
    static func runOne(_ request: RunRequest, memoryMiB: Int = 256) async throws -> RunResult {
        let hostTimeout = Duration.milliseconds(request.limits.wallTimeMilliseconds) + .seconds(10)
        return try await withVM(try configuration(memoryMiB: memoryMiB)) { session in
            try await session.run(request, timeout: hostTimeout)
        }
    }

    /// `driver.withVM`, but a failing VM's console tail is part of the error a test reports.
    static func withVM<T: Sendable>(_ vm: VMConfiguration, _ body: (any GuestSession) async throws -> T) async throws -> T {
        do {
            return try await driver.withVM(vm, logger: logger, body)
        } catch let error as VMError {
            throw DiagnosedVMError(error: error)
        }
    }

    static func census() -> VMProcessCensus { VMProcessCensus.take(runtimeDirectory: runtimeRoot) }
}

/// A ``VMError`` whose description carries the guest console tail, for test reports.
struct DiagnosedVMError: Error, CustomStringConvertible {
    var error: VMError
    var description: String { "\(error)\n--- guest console tail ---\n\(error.consoleTail ?? "(none)")" }
}

extension RunResult {
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    var compileText: String { compileOutput.map { String(decoding: $0, as: UTF8.self) } ?? "" }
    var summary: String {
        "verdict=\(verdict.rawValue) exit=\(exitCode.map { "\($0)" } ?? "-") signal=\(signal.map { "\($0)" } ?? "-") message=\(message ?? "-") stdout=\(stdoutText.prefix(300).debugDescription) stderr=\(stderrText.prefix(300).debugDescription) compile=\(compileText.prefix(300).debugDescription)"
    }
}
