#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AgentProtocol
import Logging
import MicroVM

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension FirecrackerDriver {
    /// Brings a VM up, handing each VM it creates to `track` (the caller tears the last one down):
    /// restored from a snapshot when ``Configuration/snapshotDirectory`` is set (made on first use),
    /// cold otherwise. A snapshot that cannot be made or restored costs speed, not the job: the VM
    /// then boots cold, and a snapshot Firecracker refused is removed so the next VM makes a new one.
    func start(
        _ vmConfiguration: VMConfiguration, logger: Logger, track: (FirecrackerVM) -> Void
    ) async throws -> FirecrackerGuestSession {
        func bootCold(_ vmConfiguration: VMConfiguration) async throws -> FirecrackerGuestSession {
            let vm = makeVM(vmConfiguration, logger: logger)
            track(vm)
            return try await boot(vm, steps: BootSequence.steps(entropyDevice: configuration.entropyDevice))
        }
        guard let root = configuration.snapshotDirectory else { return try await bootCold(vmConfiguration) }
        // Kernel and root filesystem of one image even if a symlink to it is re-pointed meanwhile:
        // the snapshot records the drive's path and the key names the files behind it.
        let resolved = vmConfiguration.resolvingSymlinks()
        let store: SnapshotStore
        let snapshot: (key: SnapshotKey, directory: String)
        do {
            store = try SnapshotStore(root: root)
            snapshot = try await self.snapshot(for: resolved, store: store, logger: logger)
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            logger.warning("cannot make a VM snapshot; booting cold", metadata: ["error": "\(error)"])
            return try await bootCold(resolved)
        }
        let vm = makeVM(resolved, logger: logger)
        track(vm)
        do {
            return try await boot(vm, steps: BootSequence.restoreSteps(snapshot: snapshot.directory))
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            let refused = vm.snapshotRefused
            await vm.tearDown()
            if refused { store.invalidate(snapshot.key) }
            logger.warning(
                "restoring the VM snapshot failed; booting cold",
                metadata: ["error": "\(error)", "step": "\(vm.failedStep ?? "-")", "snapshot_removed": "\(refused)"])
            return try await bootCold(resolved)
        }
    }

    /// The store directory of the snapshot for VMs shaped like `vm`, saved now from a freshly booted
    /// template VM if there is none yet. The template runs only our warm-up, never a job.
    func snapshot(
        for vm: VMConfiguration, store: SnapshotStore, logger: Logger
    ) async throws -> (key: SnapshotKey, directory: String) {
        let key = try snapshotKey(for: vm)
        let clock = ContinuousClock()
        let started = clock.now
        let (directory, created) = try await store.obtain(key, logger: logger) { partial in
            try await saveSnapshot(of: vm, into: partial, logger: logger)
        }
        if created {
            logger.notice(
                "made a VM snapshot; VMs now start from it",
                metadata: ["snapshot": "\(directory)", "ms": "\(milliseconds(clock.now - started))"])
        }
        return (key, directory)
    }

    /// Boots a template VM exactly like a job's, runs the warm-up, saves it into `partial`, destroys it.
    private func saveSnapshot(of vmConfiguration: VMConfiguration, into partial: String, logger: Logger) async throws {
        var logger = logger
        logger[metadataKey: "snapshot"] = "template"
        let template = makeVM(vmConfiguration, logger: logger)
        do {
            let session = try await boot(template, steps: BootSequence.steps(entropyDevice: configuration.entropyDevice))
            if let warmup = configuration.snapshotWarmup {
                let result = try await session.run(
                    RunRequest(id: "snapshot-warmup", workload: .shell(command: warmup)), timeout: configuration.snapshotSaveTimeout)
                guard result.verdict == .ok else {
                    throw VMError(.bootFailed, "the snapshot warm-up command failed: \(result.message ?? result.verdict.rawValue)")
                }
            }
            try await template.saveSnapshot(into: partial, timeout: configuration.snapshotSaveTimeout)
        } catch {
            await template.tearDown()
            throw error
        }
        await template.tearDown()
    }

    /// Everything that shapes the saved machine, as the driver would configure it: a change to any
    /// of it (or to the binary, kernel or root filesystem) makes a new snapshot.
    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey {
        guard let binary = FirecrackerInstallation.resolveExecutable(configuration.firecrackerPath) else {
            throw VMError(.vmmUnavailable, "firecracker binary \(configuration.firecrackerPath) not found (not on PATH and not an executable path)")
        }
        let layout: FirecrackerLayout =
            configuration.jailer.map {
                .jailed(chrootBaseDirectory: $0.chrootBaseDirectory, execFileName: binary.lastPathComponent, vmID: "template")
            } ?? .plain(runtimeDirectory: vm.runtimeDirectory, vmID: "template", image: vm.image)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let machine = try encoder.encode(MachineConfiguration(vcpuCount: vm.vcpus, memSizeMib: vm.memoryMiB, smt: false))
        let drive = try encoder.encode(
            Drive(driveId: "rootfs", pathOnHost: layout.inVMM(layout.rootfs), isRootDevice: true, isReadOnly: true))
        return SnapshotKey(
            format: "codebench-firecracker-snapshot 1",
            files: [("firecracker", binary), ("kernel", vm.image.kernelPath), ("rootfs", vm.image.rootfsPath)],
            machine: [
                "machine-config " + String(decoding: machine, as: UTF8.self),
                "boot-args " + configuration.effectiveBootArguments,
                "drive " + String(decoding: drive, as: UTF8.self),
                "vsock guest_cid=\(configuration.guestCID) agent_port=\(configuration.agentVsockPort)",
                "entropy-device \(configuration.entropyDevice ? "on" : "off")",
                "jailer \(configuration.jailer == nil ? "off" : "on")",
                "warmup " + (configuration.snapshotWarmup ?? "-"),
            ])
    }
}
