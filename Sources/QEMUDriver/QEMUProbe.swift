import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

extension QEMUDriver {
    /// Whether QEMU can run VMs under `accelerator` here, checked in the order an operator fixes
    /// things: the binary, `/dev/kvm` (for KVM), the guest image, then (when `boot`) a real boot of the
    /// image to the agent's hello within `configuration.kvmProbeTimeout`. KVM can be present yet
    /// unusable: on nested "PVM" KVM an ordinary kernel dies in KVM's instruction emulator
    /// ("emulation failure"), which only the boot shows. Which VMM to use is ``VMMSelection``'s call.
    public static func probe(
        accelerator: Accelerator,
        image: GuestImage = .at(),
        configuration: Configuration = Configuration(),
        boot: Bool = true,
        logger: Logger
    ) async -> VMMProbeResult {
        let kind = accelerator.kind
        func unusable(_ reason: String) -> VMMProbeResult { VMMProbeResult(kind: kind, usable: false, reason: reason) }
        guard access(configuration.binaryPath, X_OK) == 0 else {
            return unusable("binary missing: \(configuration.binaryPath) (Debian: apt-get install qemu-system-x86)")
        }
        if accelerator == .kvm, let problem = KVMDevice.problem() { return unusable(problem) }
        if let problem = image.problem { return unusable(problem) }
        guard boot else { return .notBooted(kind, present: accelerator == .kvm ? "binary, /dev/kvm and image" : "binary and image") }

        var driverConfiguration = configuration
        driverConfiguration.accelerator = accelerator
        // A probe proves a cold boot; a snapshot restore would prove less, and making one costs more.
        driverConfiguration.snapshotDirectory = nil
        let vm = VMConfiguration(image: image, memoryMiB: 128, bootTimeout: configuration.kvmProbeTimeout)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let boot = try await QEMUDriver(configuration: driverConfiguration).withVM(vm, logger: logger) { session in session.bootDuration }
            return VMMProbeResult(
                kind: kind, usable: true, reason: "the agent said hello \(BootSteps.milliseconds(boot)) ms after launch under \(accelerator.rawValue)")
        } catch is CancellationError {
            return unusable("the probe was cancelled")
        } catch {
            // The telling line ("KVM internal error. Suberror: 1 ... emulation failure") is on QEMU's
            // stderr, which the VMError quotes.
            let detail = (error as? VMError)?.message ?? "\(error)"
            return unusable("no agent hello under \(accelerator.rawValue) within \(BootSteps.milliseconds(clock.now - start)) ms: \(detail)")
        }
    }
}
