import TestSupport
import AgentProtocol
import FirecrackerDriver
import Foundation
import MicroVM
import Testing

/// Why the real-Firecracker test cannot run here, or nil when it can. Printed once, so a skipped run
/// says exactly what is missing.
enum RealFirecracker {
    static let skipReason: String? = {
        var reasons: [String] = []
        if FirecrackerInstallation.resolveExecutable("firecracker") == nil {
            reasons.append("`firecracker` is not on PATH (\(ProcessInfo.processInfo.environment["PATH"] ?? ""))")
        }
        if let problem = KVMDevice.problem() { reasons.append(problem) }
        let image = GuestImage.at()
        for path in [image.kernelPath, image.rootfsPath] where !FileManager.default.isReadableFile(atPath: path) {
            reasons.append("guest image file \(path) is missing (scripts/build-guest-image)")
        }
        guard !reasons.isEmpty else { return nil }
        let text = reasons.joined(separator: "; ")
        print("RealFirecrackerTests skipped: \(text)")
        return text
    }()
}

@Suite struct RealFirecrackerTests {
    // Runs only where Firecracker can: the binary on PATH, /dev/kvm answering, the image built.
    @Test(.enabled(if: RealFirecracker.skipReason == nil, "needs firecracker on PATH, a working /dev/kvm and the guest image"))
    func bootsTheGuestImageAndRunsAJob() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let driver = FirecrackerDriver(configuration: .init(serialConsole: true))
        let vm = VMConfiguration(vcpus: 1, memoryMiB: 256, bootTimeout: .seconds(30), runtimeDirectory: directory.file("run"))
        let (result, boot) = try await driver.withVM(vm, logger: Fixtures.logger) { session in
            (try await session.run(RunRequest(id: "real-1", workload: .shell(command: "echo hello from firecracker; uname -r")), timeout: .seconds(20)),
             session.bootDuration)
        }
        print("RealFirecrackerTests: agent hello \(boot) after launch")
        #expect(result.verdict == .ok)
        #expect(result.exitCode == 0)
        #expect(String(decoding: result.stdout, as: UTF8.self).hasPrefix("hello from firecracker\n"))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: directory.file("run"))) ?? []).isEmpty)
    }

    /// Whatever the host, the skip decision must agree with what `doctor` would say about it.
    @Test func theSkipReasonMatchesTheHost() {
        let hasBinary = FirecrackerInstallation.resolveExecutable("firecracker") != nil
        if !hasBinary {
            #expect(RealFirecracker.skipReason?.contains("`firecracker` is not on PATH") == true)
        }
        if KVMDevice.problem() != nil {
            #expect(RealFirecracker.skipReason != nil)
        }
    }
}
