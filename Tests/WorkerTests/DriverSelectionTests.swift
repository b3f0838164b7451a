import Foundation
import Logging
import MicroVM
import QEMUDriver
import TestSupport
import Testing

@testable import Worker

/// The worker's side of choosing a VMM: what ``VMMProber`` checks at each thoroughness, the
/// settings that need no probe boot, and the probe memo of `vm run`. None of these boots a VM.
@Suite struct DriverSelectionTests {
    let logger = Logger(label: "test.selection")

    private func image(in directory: TemporaryDirectory) throws -> GuestImage {
        try directory.write("vmlinux", "kernel")
        try directory.write("rootfs.ext4", "rootfs")
        return .at(directory.path)
    }

    @Test func atStartQEMUUnderTCGIsTakenAsUsableAndQEMUAcceleratorTCGRulesOutKVM() async throws {
        let prober = VMMProber(image: .at("/nonexistent"), thoroughness: .start)
        let decision = await DriverSelection.select(vmm: .qemu, qemuAccelerator: .tcg, prober: prober, logger: logger)
        #expect(try decision.choice.get() == .qemuTCG)
        #expect(decision.probes == [
            VMMProbeResult(kind: .qemuKVM, usable: false, reason: "qemu-accelerator=tcg"),
            VMMProbeResult(kind: .qemuTCG, usable: true, reason: "software emulation"),
        ])
    }

    @Test func staticChecksNameWhatIsMissingAndProveNothing() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var prober = VMMProber(image: try image(in: directory), thoroughness: .staticChecks)
        prober.qemu.binaryPath = directory.file("no-qemu")
        let missing = await prober.probe(.qemuTCG, logger: logger)
        #expect(!missing.usable && !missing.staticChecksOnly)
        #expect(missing.reason.hasPrefix("binary missing: \(directory.file("no-qemu"))"))

        prober.qemu.binaryPath = "/bin/true"
        let present = await prober.probe(.qemuTCG, logger: logger)
        #expect(!present.usable && present.staticChecksOnly, "\(present)")
        prober.image = .at(directory.file("elsewhere"))
        let noImage = await prober.probe(.qemuTCG, logger: logger)
        #expect(noImage.reason.hasPrefix("image not built: \(directory.file("elsewhere"))/vmlinux"), "\(noImage)")

        // Nothing proven: `doctor --no-boot` lists candidates, but no VMM is picked.
        prober.image = try image(in: directory)
        let decision = await DriverSelection.select(vmm: .qemu, qemuAccelerator: .tcg, prober: prober, logger: logger)
        #expect(throws: VMError.self) { try decision.choice.get() }
        #expect(decision.probes.filter(\.staticChecksOnly).map(\.kind) == [.qemuTCG])
    }

    @Test func vmmFirecrackerWithoutFirecrackerRefusesToStartAndSaysWhy() async throws {
        var configuration = WorkerConfiguration()
        configuration.vmm = .firecracker
        configuration.imageDirectory = "/nonexistent"
        let error = await #expect(throws: WorkerConfigurationError.self) {
            _ = try await DriverSelection.makeDriver(for: configuration, logger: logger)
        }
        // Binary missing here; where Firecracker is installed, the missing image is what fails.
        #expect(error?.description.contains("vmm=firecracker: firecracker is not usable:") == true, "\(String(describing: error))")
    }

    @Test func aRememberedProbeHoldsForTheSameFilesOnly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("qemu", "v1")
        let memo = VMMProbeMemo(directory: directory.path, kind: .qemuKVM, files: [directory.file("qemu")])
        #expect(memo.recall() == nil)
        let result = VMMProbeResult(kind: .qemuKVM, usable: false, reason: "no agent hello\nKVM internal error")
        memo.remember(result)
        #expect(memo.recall() == VMMProbeResult(kind: .qemuKVM, usable: false, reason: "no agent hello KVM internal error"))

        // An upgraded binary (another mtime) may behave differently: probe again.
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, directory.file("qemu"), &times, 0) == 0)
        #expect(VMMProbeMemo(directory: directory.path, kind: .qemuKVM, files: [directory.file("qemu")]).recall() == nil)
    }
}
