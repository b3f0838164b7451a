import AgentProtocol
import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension FirecrackerDriver {
    /// Whether Firecracker can run VMs here, checked in the order an operator fixes things: binary
    /// (on PATH or configured), its version, `/dev/kvm`, the guest image, then (when `boot`) a real
    /// boot of the image to the agent's hello (KVM can be present yet unusable, e.g. nested "PVM"
    /// KVM). Which VMM to use is ``VMMSelection``'s call.
    public static func probe(
        configuration: Configuration = Configuration(),
        image: GuestImage = .at(),
        bootTimeout: Duration = .seconds(30),
        boot: Bool = true,
        logger: Logger
    ) async -> VMMProbeResult {
        func unusable(_ reason: String) -> VMMProbeResult { VMMProbeResult(kind: .firecracker, usable: false, reason: reason) }

        guard let binary = FirecrackerInstallation.resolveExecutable(configuration.firecrackerPath) else {
            if configuration.firecrackerPath.contains("/") {
                return unusable("binary missing: \(configuration.firecrackerPath) does not exist or is not executable")
            }
            let path = getenv("PATH").map { String(cString: $0) } ?? ""
            return unusable("binary missing: `\(configuration.firecrackerPath)` is not on PATH (\(path)); see docs/firecracker.md")
        }
        let release: FirecrackerRelease
        do {
            release = try await FirecrackerInstallation.version(of: binary)
        } catch {
            return unusable("\(error)")
        }
        guard release >= FirecrackerInstallation.minimumVersion else {
            return unusable("\(binary) is \(release), older than the supported \(FirecrackerInstallation.minimumVersion)")
        }
        if let jailer = configuration.jailer, FirecrackerInstallation.resolveExecutable(jailer.jailerPath) == nil {
            return unusable("jailer missing: \(jailer.jailerPath) does not exist or is not executable")
        }
        if let problem = KVMDevice.problem() { return unusable(problem) }
        if let problem = image.problem { return unusable(problem) }
        guard boot else { return .notBooted(.firecracker, present: "\(binary) \(release), /dev/kvm and image") }
        var driverConfiguration = configuration
        driverConfiguration.firecrackerPath = binary
        // A probe proves a cold boot; a snapshot restore would prove less, and making one costs more.
        driverConfiguration.snapshotDirectory = nil
        let vm = VMConfiguration(image: image, memoryMiB: 128, bootTimeout: bootTimeout)
        do {
            let boot = try await FirecrackerDriver(configuration: driverConfiguration).withVM(vm, logger: logger) { session in
                session.bootDuration
            }
            return VMMProbeResult(
                kind: .firecracker, usable: true,
                reason: "\(binary) \(release): the agent said hello \(BootSteps.milliseconds(boot)) ms after launch")
        } catch let error as VMError {
            var reason = "probe guest failed to boot: \(error.message)"
            if let tail = error.consoleTail?.split(separator: "\n").suffix(3).joined(separator: " | "), !tail.isEmpty {
                reason += " [last output: \(tail)]"
            }
            return unusable(reason)
        } catch {
            return unusable("probe guest failed to boot: \(error)")
        }
    }
}
