import Logging
import MicroVM

/// The Firecracker driver as ``VMBoot`` drives it: its steps (Firecracker's API calls, in the order
/// it requires) and what only Firecracker knows (its `fault_message`, its log, how a refused snapshot
/// looks). Internal, since its VMs are.
struct FirecrackerBoot: BootableVMM {
    let driver: FirecrackerDriver

    var configuration: FirecrackerDriver.Configuration { driver.configuration }

    func snapshotDirectory(for vm: VMConfiguration) -> String? { configuration.snapshotDirectory }
    var snapshotWarmup: String? { configuration.snapshotWarmup }
    var snapshotSaveTimeout: Duration { configuration.snapshotSaveTimeout }

    func makeVM(_ vm: VMConfiguration, purpose: BootPurpose, logger: Logger) -> FirecrackerVM {
        driver.makeVM(vm, logger: logger)
    }

    func steps(for purpose: BootPurpose) -> [BootStep<FirecrackerVM>] {
        switch purpose {
        case .cold, .template: return Self.coldSteps(entropyDevice: configuration.entropyDevice)
        case .restore(let snapshot): return Self.restoreSteps(snapshot: snapshot)
        }
    }

    func session(of vm: FirecrackerVM) throws -> FirecrackerGuestSession {
        guard let agent = vm.agent, let hello = vm.hello, let startedAt = vm.startedAt else {
            throw VMError(.agentUnreachable, "boot finished without an agent connection")
        }
        return FirecrackerGuestSession(hello: hello, bootDuration: vm.clock.now - startedAt, agent: agent)
    }

    /// A step's failure names the step, carries Firecracker's explanation and, when the VMM died,
    /// how. Errors after the steps (a template's warm-up or save) pass as they are.
    func failure(_ error: any Error, step: String?, of vm: FirecrackerVM) async -> any Error {
        guard let step else { return error }
        vm.failedStep = step
        vm.failureCause = error
        if !(error is CancellationError) { await vm.settleDiagnostics() }
        return driver.failure(step: step, error: error, vm: vm)
    }

    func snapshotRefused(by vm: FirecrackerVM, failure: any Error) -> Bool { vm.snapshotRefused }

    func tearDown(_ vm: FirecrackerVM) async -> Duration? {
        let cpuTime = await vm.tearDown()
        vm.logger.debug("VM torn down", metadata: ["vmm_cpu_ms": "\(cpuTime.map { BootSteps.milliseconds($0) } ?? "-")"])
        return cpuTime
    }

    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey { try driver.snapshotKey(for: vm) }

    func saveSnapshot(of template: FirecrackerVM, into partial: String) async throws {
        try await template.saveSnapshot(into: partial, timeout: configuration.snapshotSaveTimeout)
    }
}
