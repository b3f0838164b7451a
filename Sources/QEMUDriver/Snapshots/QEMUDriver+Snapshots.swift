import AgentProtocol
import FoundationEssentials
import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

extension QEMUDriver {
    static let qmpSocketName = "qmp.sock"
    /// QEMU's migration stream, in the snapshot directory.
    static let snapshotStateFile = "state"

    /// The key of QEMU snapshots: the binary, kernel and root filesystem, and the machine arguments.
    static func snapshotKey(binaryPath: String, image: GuestImage, machine: QEMUCommandLine, warmup: String?) -> SnapshotKey {
        SnapshotKey(
            format: "codebench-qemu-snapshot 1",
            files: [("qemu", binaryPath), ("kernel", image.kernelPath), ("rootfs", image.rootfsPath)],
            machine: machine.machineArguments + ["warmup " + (warmup ?? "-")])
    }

    /// Brings a VM up: restored from a snapshot when ``Configuration/snapshotDirectory`` is set (made
    /// on first use), cold otherwise. A snapshot that cannot be made or restored costs speed, not the
    /// job: the VM then boots cold, and a snapshot QEMU refused is removed so the next VM makes a new one.
    func start(
        _ vm: VMConfiguration, accelerator: QEMUCommandLine.ResolvedAccelerator, resources: inout VMResources, logger: Logger
    ) async throws -> QEMUSession {
        // A VM with network boots cold: its netdev names this VM's own proxy state, and network jobs are rare.
        guard let root = configuration.snapshotDirectory, !vm.network else {
            return try await boot(vm, accelerator: accelerator, resources: &resources, logger: logger)
        }
        // Resolved once: the snapshot and the VM restoring it must use the same image even if
        // image/current is re-pointed meanwhile (its page cache belongs to that root filesystem).
        let vm = vm.resolvingSymlinks()
        let store: SnapshotStore
        let snapshot: (key: SnapshotKey, path: String)
        do {
            try validate(vm)
            store = try SnapshotStore(root: root)
            snapshot = try await self.snapshot(for: vm, accelerator: accelerator, store: store, logger: logger)
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            logger.warning("cannot make a VM snapshot; booting cold", metadata: ["error": "\(error)"])
            return try await boot(vm, accelerator: accelerator, resources: &resources, logger: logger)
        }
        do {
            return try await boot(vm, accelerator: accelerator, mode: .restore(statePath: snapshot.path), resources: &resources, logger: logger)
        } catch {
            if error is CancellationError || Task.isCancelled { throw error }
            let failure = await resources.bootFailure(error)
            let refused = resources.process?.exitStatus != nil || (failure as? VMError)?.code == .agentProtocol
            await resources.destroy(logger: logger)
            resources = VMResources()
            if refused { store.invalidate(snapshot.key) }
            logger.warning(
                "restoring the VM snapshot failed; booting cold",
                metadata: ["error": "\(failure)", "snapshot_removed": "\(refused)"])
            return try await boot(vm, accelerator: accelerator, resources: &resources, logger: logger)
        }
    }

    /// The saved state for VMs shaped like `vm` (its image paths already resolved), saved now from a
    /// freshly booted template VM if there is none yet. The template runs no job's code, only the
    /// fixed ``Configuration/snapshotWarmup``.
    func snapshot(
        for vm: VMConfiguration, accelerator: QEMUCommandLine.ResolvedAccelerator, store: SnapshotStore, logger: Logger
    ) async throws -> (key: SnapshotKey, path: String) {
        let image = vm.image
        let machine = QEMUCommandLine(
            configuration: configuration, vm: vm, accelerator: accelerator, agentSocketPath: SnapshotKey.socketPlaceholder,
            tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        let key = Self.snapshotKey(binaryPath: configuration.binaryPath, image: image, machine: machine, warmup: configuration.snapshotWarmup)
        let clock = ContinuousClock()
        let started = clock.now
        let (directory, created) = try await store.obtain(key, logger: logger) { partial in
            let state = partial + "/" + Self.snapshotStateFile
            try await saveSnapshot(of: vm, accelerator: accelerator, to: state, logger: logger)
            var info = stat()
            guard stat(state, &info) == 0, info.st_size > 0 else {
                throw VMError(.bootFailed, "QEMU reported the snapshot saved, but \(state) is missing or empty")
            }
        }
        let path = directory + "/" + Self.snapshotStateFile
        if created {
            logger.notice(
                "made a VM snapshot; VMs now start from it",
                metadata: ["snapshot": "\(path)", "ms": "\(BootSteps.milliseconds(clock.now - started))"])
        }
        return (key, path)
    }

    /// Boots a template VM, waits for its agent, writes its state to `path` with QMP `migrate`, and destroys it.
    private func saveSnapshot(of vm: VMConfiguration, accelerator: QEMUCommandLine.ResolvedAccelerator, to path: String, logger: Logger) async throws {
        var logger = logger
        logger[metadataKey: "snapshot"] = "template"
        var resources = VMResources()
        do {
            let template = try await boot(vm, accelerator: accelerator, mode: .template, resources: &resources, logger: logger)
            if let warmup = configuration.snapshotWarmup {
                let result = try await template.run(
                    RunRequest(id: "snapshot-warmup", workload: .shell(command: warmup)), timeout: configuration.snapshotSaveTimeout)
                guard result.verdict == .ok else {
                    throw VMError(.bootFailed, "the snapshot warm-up command failed: \(result.message ?? result.verdict.rawValue)")
                }
            }
            guard let directory = resources.runtimeDirectory, let process = resources.process else {
                throw VMError(.bootFailed, "the template VM has no runtime directory")
            }
            let qmpSocket = try directory.socketPath(Self.qmpSocketName)
            let timeout = configuration.snapshotSaveTimeout
            try await Self.untilExit(of: process) {
                try await Self.withDeadline(timeout, what: "saving the VM snapshot") {
                    try await Self.migrate(qmpSocket: qmpSocket, to: path)
                }
            }
        } catch {
            let failure = await resources.bootFailure(error)
            await resources.destroy(logger: logger)
            throw failure
        }
        await resources.destroy(logger: logger)
    }

    /// Live-migrates the (idle) VM into a file: it is saved running, so a restored VM runs on at once.
    private static func migrate(qmpSocket: String, to path: String) async throws {
        try await QMPClient.withConnection(socketPath: qmpSocket) { qmp in
            // QEMU 7.2 throttles migration to 32 MiB/s by default; a file takes what it is given.
            _ = try await qmp.execute("migrate-set-parameters", arguments: #"{"max-bandwidth":1099511627776}"#)
            _ = try await qmp.execute("migrate", arguments: #"{"uri":"exec:cat > \#(path)"}"#)
            while true {
                let status = try MigrationStatus(reply: try await qmp.execute("query-migrate"))
                switch status.status {
                case "completed":
                    return
                case "failed", "cancelled":
                    throw VMError(.bootFailed, "QEMU could not save the snapshot: \(status.errorDescription ?? status.status ?? "?")")
                default:
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
        }
    }

    static func withDeadline<T: Sendable>(
        _ timeout: Duration, what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard case .some(.some(let value)) = try await group.next() else {
                throw VMError(.bootTimeout, "\(what) took longer than \(timeout)")
            }
            return value
        }
    }
}

/// The part of QMP's `query-migrate` reply the driver reads.
struct MigrationStatus: Decodable {
    var status: String?
    var errorDescription: String?

    enum CodingKeys: String, CodingKey {
        case status
        case errorDescription = "error-desc"
    }

    private struct Reply: Decodable {
        var `return`: MigrationStatus
    }

    init(reply: String) throws {
        self = try JSONDecoder().decode(Reply.self, from: Data(reply.utf8)).return
    }
}
