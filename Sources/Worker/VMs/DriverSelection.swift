import FirecrackerDriver
import Logging
import MicroVM
import QEMUDriver

#if canImport(Glibc)
import Glibc
#endif

/// Picks the VMM for ``WorkerConfiguration/vmm`` once, at startup, so no job pays for a probe.
public enum DriverSelection {
    /// - `qemu`: QEMU with KVM if its boot probe passes, else TCG (or as ``WorkerConfiguration/qemuAccelerator`` says).
    /// - `firecracker`: Firecracker (fails when it is not installed).
    /// - `auto`: Firecracker if installed and /dev/kvm opens, else as `qemu`.
    public static func makeDriver(
        for configuration: WorkerConfiguration, logger: Logger
    ) async throws(WorkerConfigurationError) -> any MicroVMDriver {
        switch configuration.vmm {
        case .firecracker:
            guard firecrackerUsable() else {
                throw WorkerConfigurationError(
                    .hostNotReady, "vmm=firecracker but no usable firecracker binary or /dev/kvm on this host")
            }
            return FirecrackerDriver()
        case .auto where firecrackerUsable():
            logger.notice("VMM: firecracker")
            return FirecrackerDriver()
        case .qemu, .auto:
            return await qemu(for: configuration, logger: logger)
        }
    }

    private static func qemu(for configuration: WorkerConfiguration, logger: Logger) async -> QEMUDriver {
        switch configuration.qemuAccelerator {
        case .tcg, .kvm:
            let accelerator: QEMUDriver.Accelerator = configuration.qemuAccelerator == .kvm ? .kvm : .tcg
            logger.notice("VMM: qemu-\(accelerator.rawValue)")
            return QEMUDriver(configuration: .init(accelerator: accelerator))
        case .auto:
            break
        }
        let image = GuestImage.at(configuration.imageDirectory)
        let kvm = await QEMUDriver.probe(accelerator: .kvm, image: image, logger: logger)
        let accelerator: QEMUDriver.Accelerator = kvm.usable ? .kvm : .tcg
        logger.notice("VMM: qemu-\(accelerator.rawValue)", metadata: ["kvm_probe": "\(kvm)"])
        return QEMUDriver(configuration: .init(accelerator: accelerator))
    }

    private static func firecrackerUsable() -> Bool {
        guard FirecrackerInstallation.resolveExecutable("firecracker") != nil else { return false }
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }
}
