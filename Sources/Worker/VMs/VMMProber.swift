import FirecrackerDriver
import Logging
import MicroVM
import QEMUDriver

/// Checks one VMM for ``VMMSelection``: its static checks (binary, version, `/dev/kvm`, image), then,
/// as thoroughly as asked, a probe boot of the image to the agent's hello. The checks themselves are
/// the drivers' (`FirecrackerDriver.probe`, `QEMUDriver.probe`); this only says which and how hard.
public struct VMMProber: Sendable {
    /// How hard to look.
    public enum Thoroughness: Sendable, Hashable {
        /// No VM is booted (`doctor --no-boot`): nothing is proven usable.
        case staticChecks
        /// A worker's start: a probe boot where hardware can fail (Firecracker, QEMU with KVM). QEMU
        /// under TCG is taken as usable: software emulation runs wherever QEMU does, and its probe
        /// would add a second to every start.
        case start
        /// Every VMM boots the image (`doctor`).
        case everything
    }

    /// The image a probe boots, and whose files the static checks look for.
    public var image: GuestImage
    /// How far each probe goes.
    public var thoroughness: Thoroughness
    /// Which binaries (and jailer) Firecracker's probe checks and boots.
    public var firecracker: FirecrackerDriver.Configuration
    /// Which binary QEMU's probes check and boot; its accelerator and snapshot settings are the probe's own.
    public var qemu: QEMUDriver.Configuration
    /// Bound of each probe boot; nil keeps each driver's own (Firecracker 30 s, QEMU's `kvmProbeTimeout`).
    public var bootTimeout: Duration?
    /// Where QEMU's probe results are remembered until the host reboots or the binary or kernel
    /// changes (``VMMProbeMemo``), so that short-lived `vm run`s do not pay a failing KVM probe every
    /// time; nil probes every time (a worker probes once at start anyway, and `doctor` must look).
    public var memoDirectory: String?

    public init(
        image: GuestImage, thoroughness: Thoroughness, firecracker: FirecrackerDriver.Configuration = .init(),
        qemu: QEMUDriver.Configuration = .init(), bootTimeout: Duration? = nil, memoDirectory: String? = nil
    ) {
        self.image = image
        self.thoroughness = thoroughness
        self.firecracker = firecracker
        self.qemu = qemu
        self.bootTimeout = bootTimeout
        self.memoDirectory = memoDirectory
    }

    /// One VMM's result; never throws: what failed is the result's reason.
    public func probe(_ kind: VMMKind, logger: Logger) async -> VMMProbeResult {
        let boot = thoroughness != .staticChecks
        switch kind {
        case .firecracker:
            return await FirecrackerDriver.probe(
                configuration: firecracker, image: image, bootTimeout: bootTimeout ?? .seconds(30), boot: boot, logger: logger)
        case .qemuTCG where thoroughness == .start:
            return VMMProbeResult(kind: .qemuTCG, usable: true, reason: "software emulation")
        case .qemuKVM, .qemuTCG:
            var qemu = self.qemu
            if let bootTimeout { qemu.kvmProbeTimeout = bootTimeout }
            let accelerator: QEMUDriver.Accelerator = kind == .qemuKVM ? .kvm : .tcg
            guard boot, let memoDirectory else {
                return await QEMUDriver.probe(accelerator: accelerator, image: image, configuration: qemu, boot: boot, logger: logger)
            }
            let memo = VMMProbeMemo(directory: memoDirectory, kind: kind, files: [qemu.binaryPath, image.kernelPath])
            if let remembered = memo.recall() {
                logger.notice("VMM probe result remembered from earlier in this host boot", metadata: ["probe": "\(remembered)", "memo": "\(memo.path)"])
                return remembered
            }
            let result = await QEMUDriver.probe(accelerator: accelerator, image: image, configuration: qemu, logger: logger)
            if !Task.isCancelled { memo.remember(result) }
            return result
        }
    }
}
