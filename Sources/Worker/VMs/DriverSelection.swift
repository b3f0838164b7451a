import FirecrackerDriver
import Logging
import MicroVM
import QEMUDriver

/// Where the worker's VMM choice is made, once at startup so no job pays for a probe. The decision
/// is ``VMMSelection``'s; this is the one module that knows both drivers, so it probes
/// (``VMMProber``) and builds the driver. `run`, `vm run` and `doctor` all go through ``select``.
public enum DriverSelection {
    /// - `auto`: Firecracker if its probe boots the image, else QEMU with KVM if its probe passes, else QEMU with TCG.
    /// - `qemu`: QEMU with KVM if its probe passes, else TCG (``WorkerConfiguration/qemuAccelerator`` can force one).
    /// - `firecracker`: Firecracker, or a `hostNotReady` error saying why it is not usable.
    public static func makeDriver(
        for configuration: WorkerConfiguration, logger: Logger
    ) async throws(WorkerConfigurationError) -> any MicroVMDriver {
        let prober = VMMProber(image: .at(configuration.imageDirectory), thoroughness: .start)
        let decision = await select(vmm: configuration.vmm, qemuAccelerator: configuration.qemuAccelerator, prober: prober, logger: logger)
        let kind: VMMKind
        switch decision.choice {
        case .success(let chosen): kind = chosen
        case .failure(let error):
            throw WorkerConfigurationError(.hostNotReady, "vmm=\(configuration.vmm.rawValue): \(error.message)")
        }
        logger.notice("VMM selected", metadata: ["vmm": "\(kind)", "probes": "\(decision.probes.map(\.description))"])
        if kind != .firecracker { try checkQEMUJail(configuration) }
        let chosen = driver(for: kind, configuration)
        if configuration.allowNetwork, let qemu = chosen as? QEMUDriver {
            // Fail at start, loudly, rather than report ready and then fail every network job.
            do {
                try await qemu.prepareNetwork()
            } catch {
                throw WorkerConfigurationError(.hostNotReady, "allow-network is set, but the egress proxy cannot run: \(error)")
            }
        }
        return chosen
    }

    /// Probes what the settings allow with `prober` and picks (``VMMSelection/choose(vmm:qemuAccelerator:probe:report:)``);
    /// `report` sees each result as soon as it is known.
    public static func select(
        vmm: VMMChoice, qemuAccelerator: QEMUAcceleratorChoice, prober: VMMProber, logger: Logger,
        report: (VMMProbeResult) -> Void = { _ in }
    ) async -> VMMDecision {
        await VMMSelection.choose(
            vmm: vmm, qemuAccelerator: qemuAccelerator, probe: { kind in await prober.probe(kind, logger: logger) }, report: report)
    }

    /// The driver for `kind`, configured from the worker's settings.
    public static func driver(for kind: VMMKind, _ configuration: WorkerConfiguration) -> any MicroVMDriver {
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
            restoreMode: configuration.qemuRestore == .copyOnWrite ? .copyOnWrite : .streamed,
            egressPorts: configuration.egressPorts, egressAllowedAddresses: configuration.egressAllowedAddresses,
            jail: configuration.qemuJail ? QEMUJail() : nil, standbyVMMs: configuration.qemuStandby)
    }

    /// With `qemu-jail=on`, refuses a host that cannot jail QEMU (``QEMUJailProbe``), with every
    /// reason and the explicit way out, rather than failing every job's boot.
    public static func checkQEMUJail(
        _ configuration: WorkerConfiguration, probe: QEMUJailProbe = QEMUJailProbe()
    ) throws(WorkerConfigurationError) {
        guard let jail = qemuConfiguration(.tcg, configuration).jail else { return }
        let problems = probe.problems(for: jail)
        guard !problems.isEmpty else { return }
        throw WorkerConfigurationError(
            .hostNotReady,
            "qemu-jail=on, but this host cannot jail QEMU: \(problems.joined(separator: "; ")). "
                + "Fix that, or set qemu-jail=off to run QEMU unjailed as root (docs/security.md)")
    }
}
