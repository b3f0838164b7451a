import AgentProtocol
import Logging

extension VMBoot {
    /// The store directory of the snapshot for VMs shaped like `vm` (its image resolved), saved now
    /// from a freshly booted template VM if there is none yet (once across processes: the store's
    /// lock). The template runs only the driver's warm-up, never a job.
    public func snapshot(
        for vm: VMConfiguration, store: SnapshotStore, logger: Logger
    ) async throws -> (key: SnapshotKey, directory: String) {
        let key = try vmm.snapshotKey(for: vm)
        let clock = ContinuousClock()
        let started = clock.now
        let (directory, created) = try await store.obtain(key, logger: logger) { partial in
            try await saveTemplate(of: vm, into: partial, logger: logger)
        }
        if created {
            logger.notice(
                "made a VM snapshot; VMs now start from it",
                metadata: ["snapshot": "\(directory)", "ms": "\(BootSteps.milliseconds(clock.now - started))"])
        }
        return (key, directory)
    }

    /// Boots a template exactly like a job's VM, runs the warm-up, saves it into `partial`, destroys it.
    private func saveTemplate(of vm: VMConfiguration, into partial: String, logger: Logger) async throws {
        var logger = logger
        logger[metadataKey: "snapshot"] = "template"
        let template = vmm.makeVM(vm, purpose: .template, logger: logger)
        do {
            let session: VMM.Session
            do throws(Failure) {
                session = try await bringUp(template, .template)
            } catch {
                throw error.error
            }
            do {
                if let warmup = vmm.snapshotWarmup {
                    // The next request's directory and cgroup are made before the answer, so the
                    // snapshot holds them and no restored VM makes its own (docs/snapshots.md).
                    let request = RunRequest(id: "snapshot-warmup", preparingNextFor: vm.expectedJobLimits, command: warmup)
                    let result = try await session.run(request, timeout: vmm.snapshotSaveTimeout)
                    guard result.verdict == .ok else {
                        throw VMError(.bootFailed, "the snapshot warm-up command failed: \(result.message ?? result.verdict.rawValue)")
                    }
                    let shellRequest = TemplateWarmup.shellJob(
                        preparingFor: vm.expectedJobLimits, jobs: vm.snapshotPreparedJobs, forkServers: vm.snapshotForkServers)
                    let shellJob = try await session.run(shellRequest, timeout: vmm.snapshotSaveTimeout)
                    guard shellJob.verdict == .ok else {
                        throw VMError(.bootFailed, "the snapshot's shell job failed: \(shellJob.message ?? shellJob.verdict.rawValue)")
                    }
                }
                try await vmm.saveSnapshot(of: template, into: partial)
            } catch {
                throw await vmm.failure(error, step: nil, of: template)
            }
        } catch {
            await vmm.tearDown(template)
            throw error
        }
        await vmm.tearDown(template)
    }
}
