import AgentProtocol
import Logging
import MicroVM

/// The QEMU driver as ``VMBoot`` drives it: its steps and what only QEMU knows (its last words on
/// stderr, the console, how a refused snapshot looks). Internal, since its VMs are.
struct QEMUBoot: BootableVMM {
    let driver: QEMUDriver

    var configuration: QEMUDriver.Configuration { driver.configuration }

    /// A VM with network boots cold: its netdev names this VM's own proxy state, and network jobs are rare.
    func snapshotDirectory(for vm: VMConfiguration) -> String? {
        vm.network ? nil : configuration.snapshotDirectory
    }

    var snapshotWarmup: String? { configuration.snapshotWarmup }
    var snapshotSaveTimeout: Duration { configuration.snapshotSaveTimeout }

    func makeVM(_ vm: VMConfiguration, purpose: BootPurpose, logger: Logger) -> QEMUVM {
        var logger = logger
        logger[metadataKey: "vmm"] = "\(configuration.accelerator.kind)"
        return QEMUVM(configuration: vm, logger: logger)
    }

    /// validate → prepare runtime dir → spawn VMM → connect agent channel → await hello (cold, template)
    /// or resume agent (restore: fresh entropy and the host's clock, answered by a hello with our nonce).
    /// A copy-on-write restore loads its state before the agent channel, and with standby QEMUs
    /// takes one after validate, which leaves the runtime directory and spawn steps nothing to do.
    func steps(for purpose: BootPurpose) -> [BootStep<QEMUVM>] {
        let driver = self.driver
        var steps: [BootStep<QEMUVM>] = [
            BootStep("validate") { vm in
                try driver.validate(vm.configuration)
                vm.configuration = vm.configuration.resolvingSymlinks()
            },
            BootStep("prepare runtime dir") { vm in
                if !vm.adoptedStandby { try driver.prepareRuntimeDirectory(vm) }
            },
            BootStep("spawn VMM") { vm in
                if !vm.adoptedStandby { try await driver.spawn(vm, purpose: purpose) }
            },
            BootStep("connect agent channel") { vm in try await driver.connectAgent(vm) },
        ]
        if driver.configuration.jail != nil {
            steps.append(BootStep("open egress listener") { vm in
                if vm.configuration.network { try await driver.openEgress(vm) }
            })
        }
        if case .restore(let snapshot) = purpose, driver.configuration.effectiveRestoreMode == .copyOnWrite {
            // Before the agent channel: the guest runs only once its state is loaded.
            steps.insert(BootStep("load state") { vm in try await driver.loadDeferredState(vm) }, at: 3)
            if driver.standby != nil {
                steps.insert(BootStep("take standby VMM") { vm in await driver.adoptStandby(vm, snapshot: snapshot) }, at: 1)
            }
        }
        if case .restore = purpose {
            steps.append(BootStep("resume agent") { vm in try await driver.resumeAgent(vm) })
        } else {
            steps.append(BootStep("await hello") { vm in try await driver.awaitHello(vm) })
        }
        return steps
    }

    func session(of vm: QEMUVM) throws -> QEMUSession {
        guard let hello = vm.hello, let connection = vm.resources.connection, let spawnedAt = vm.spawnedAt else {
            throw VMError(.agentUnreachable, "boot finished without an agent connection")
        }
        return QEMUSession(
            hello: hello, bootDuration: vm.clock.now - spawnedAt, connection: connection, resources: vm.resources, logger: vm.logger)
    }

    /// Says whether QEMU died, with its stderr and the console tail (``VMResources/bootFailure(_:)``).
    func failure(_ error: any Error, step: String?, of vm: QEMUVM) async -> any Error {
        let failure = await vm.resources.bootFailure(error)
        if !(failure is CancellationError) {
            vm.logger.debug("VM boot failed", metadata: ["step": "\(step ?? "-")", "error": "\(failure)"])
        }
        return failure
    }

    /// QEMU exited while loading the state, the restored agent refused its resume, or a copy-on-write
    /// snapshot's memory file changed on disk (it was not mapped; a new snapshot is made).
    func snapshotRefused(by vm: QEMUVM, failure: any Error) -> Bool {
        vm.snapshotMemoryChanged || vm.resources.process?.exitStatus != nil || (failure as? VMError)?.code == .agentProtocol
    }

    func tearDown(_ vm: QEMUVM) async -> Duration? {
        await vm.resources.destroy(logger: vm.logger)
    }

    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey {
        try driver.snapshotKey(for: vm)
    }

    func saveSnapshot(of template: QEMUVM, into partial: String) async throws {
        try await driver.saveSnapshot(of: template, to: partial + "/" + QEMUDriver.snapshotStateFile)
    }
}
