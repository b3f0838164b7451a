import FirecrackerDriver
import Logging
import MicroVM
import QEMUDriver

/// Picks the VMM for ``WorkerConfiguration/vmm`` once, at startup, so no job pays for a probe.
/// The order and the error when nothing is usable are ``VMMSelection``'s; this file only probes.
public enum DriverSelection {
    /// - `auto`: Firecracker if its probe boots the image, else QEMU with KVM if its probe passes, else QEMU with TCG.
    /// - `qemu`: QEMU with KVM if its probe passes, else TCG (``WorkerConfiguration/qemuAccelerator`` can force one).
    /// - `firecracker`: Firecracker, or a `hostNotReady` error saying why it is not usable.
    public static func makeDriver(
        for configuration: WorkerConfiguration, logger: Logger
    ) async throws(WorkerConfigurationError) -> any MicroVMDriver {
        let image = GuestImage.at(configuration.imageDirectory)
        var probes: [VMMProbeResult] = []
        if configuration.vmm != .qemu {
            probes.append(await FirecrackerDriver.probe(image: image, logger: logger))
        }
        if configuration.vmm != .firecracker {
            probes += await qemuProbes(configuration, image: image, logger: logger)
        }
        let kind: VMMKind
        do {
            switch configuration.vmm {
            case .auto, .qemu: kind = try VMMSelection.auto(probes)
            case .firecracker: kind = try VMMSelection.require(.firecracker, from: probes)
            }
        } catch {
            throw WorkerConfigurationError(.hostNotReady, "vmm=\(configuration.vmm.rawValue): \(error.message)")
        }
        logger.notice("VMM selected", metadata: ["vmm": "\(kind)", "probes": "\(probes.map(\.description))"])
        switch kind {
        case .firecracker:
            var firecracker = FirecrackerDriver.Configuration()
            firecracker.snapshotDirectory = configuration.snapshots ? configuration.snapshotDirectory : nil
            return FirecrackerDriver(configuration: firecracker)
        case .qemuKVM: return QEMUDriver(configuration: qemuConfiguration(.kvm, configuration))
        case .qemuTCG: return QEMUDriver(configuration: qemuConfiguration(.tcg, configuration))
        }
    }

    /// The QEMU driver's configuration for the worker's.
    public static func qemuConfiguration(
        _ accelerator: QEMUDriver.Accelerator, _ configuration: WorkerConfiguration
    ) -> QEMUDriver.Configuration {
        QEMUDriver.Configuration(
            accelerator: accelerator, snapshotDirectory: configuration.snapshots ? configuration.snapshotDirectory : nil,
            egressPorts: configuration.egressPorts, egressAllowedAddresses: configuration.egressAllowedAddresses)
    }

    /// KVM is probed by booting the image (it can be present yet unusable); TCG needs only QEMU itself.
    private static func qemuProbes(
        _ configuration: WorkerConfiguration, image: GuestImage, logger: Logger
    ) async -> [VMMProbeResult] {
        let tcg = VMMProbeResult(kind: .qemuTCG, usable: true, reason: "software emulation")
        switch configuration.qemuAccelerator {
        case .tcg:
            return [VMMProbeResult(kind: .qemuKVM, usable: false, reason: "qemu-accelerator=tcg"), tcg]
        case .kvm:
            return [VMMProbeResult(kind: .qemuKVM, usable: true, reason: "qemu-accelerator=kvm (not probed)")]
        case .auto:
            let kvm = await QEMUDriver.probe(accelerator: .kvm, image: image, logger: logger)
            return [VMMProbeResult(kind: .qemuKVM, usable: kvm.usable, reason: kvm.reason), tcg]
        }
    }
}
