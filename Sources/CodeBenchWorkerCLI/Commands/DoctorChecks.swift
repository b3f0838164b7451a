import FirecrackerDriver
import Foundation
import Logging
import MicroVM
import QEMUDriver

/// The checks behind `doctor`, one ``VMMProbeResult`` per VMM. Static problems are reported without
/// booting anything; a probe boot runs only once everything it needs is there.
enum DoctorChecks {
    /// How a reason starts when only the static checks ran (`--no-boot`) and they passed.
    static let notBooted = "not booted (--no-boot)"

    static func firecracker(
        configuration: FirecrackerDriver.Configuration, image: GuestImage, timeout: Duration, boot: Bool, logger: Logger
    ) async -> VMMProbeResult {
        if !boot {
            // The same order as the probe, without its boot.
            guard FirecrackerInstallation.resolveExecutable(configuration.firecrackerPath) != nil else {
                return await FirecrackerDriver.probe(configuration: configuration, image: image, bootTimeout: timeout, logger: logger)
            }
            if let problem = KVMDevice.problem() { return VMMProbeResult(kind: .firecracker, usable: false, reason: problem) }
            if let problem = imageProblem(image) { return VMMProbeResult(kind: .firecracker, usable: false, reason: problem) }
            return VMMProbeResult(kind: .firecracker, usable: false, reason: "\(notBooted): binary, /dev/kvm and image are present")
        }
        return await FirecrackerDriver.probe(configuration: configuration, image: image, bootTimeout: timeout, logger: logger)
    }

    static func qemu(
        _ accelerator: QEMUDriver.Accelerator, binary: String, image: GuestImage, timeout: Duration, boot: Bool, logger: Logger
    ) async -> VMMProbeResult {
        let kind: VMMKind = accelerator == .kvm ? .qemuKVM : .qemuTCG
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            return VMMProbeResult(kind: kind, usable: false, reason: "binary missing: \(binary) (Debian: apt-get install qemu-system-x86)")
        }
        if accelerator == .kvm, let problem = KVMDevice.problem() {
            return VMMProbeResult(kind: kind, usable: false, reason: problem)
        }
        if let problem = imageProblem(image) { return VMMProbeResult(kind: kind, usable: false, reason: problem) }
        guard boot else {
            return VMMProbeResult(kind: kind, usable: false, reason: "\(notBooted): binary\(accelerator == .kvm ? ", /dev/kvm" : "") and image are present")
        }
        var configuration = QEMUDriver.Configuration()
        configuration.binaryPath = binary
        configuration.kvmProbeTimeout = timeout
        let result = await QEMUDriver.probe(accelerator: accelerator, image: image, configuration: configuration, logger: logger)
        return VMMProbeResult(kind: kind, usable: result.usable, reason: result.reason)
    }

    static func imageProblem(_ image: GuestImage) -> String? {
        for path in [image.kernelPath, image.rootfsPath] where !FileManager.default.isReadableFile(atPath: path) {
            return "image not built: \(path) is missing (run scripts/build-guest-image)"
        }
        return nil
    }
}
