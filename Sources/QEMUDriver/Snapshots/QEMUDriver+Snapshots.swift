import AgentProtocol
import FoundationEssentials
import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// What is QEMU's own in snapshot starts: the key, and saving a template's state with QMP `migrate`.
/// When to make, restore or discard a snapshot is ``VMBoot``'s (MicroVM), shared with Firecracker.
extension QEMUDriver {
    static let qmpSocketName = "qmp.sock"
    /// QEMU's migration stream, in the snapshot directory.
    static let snapshotStateFile = "state"

    /// The key of QEMU snapshots: the binary, kernel and root filesystem, and the machine arguments.
    static func snapshotKey(
        binaryPath: String, image: GuestImage, machine: QEMUCommandLine, warmup: String?, preparingFor limits: ResourceLimits? = nil,
        preparedJobs: Int = 1, forkServers: Bool = true
    ) -> SnapshotKey {
        SnapshotKey(
            format: "codebench-qemu-snapshot 1",
            files: [("qemu", binaryPath), ("kernel", image.kernelPath), ("rootfs", image.rootfsPath)],
            machine: machine.machineArguments + TemplateWarmup.key(warmup, preparingFor: limits, jobs: preparedJobs, forkServers: forkServers))
    }

    /// The key for VMs shaped like `vm` (its image resolved), after checking that such a VM can boot
    /// at all: an invalid VM must not start a template.
    func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey {
        try validate(vm)
        var machine = QEMUCommandLine(
            configuration: configuration, vm: vm, accelerator: configuration.accelerator, agentSocketPath: SnapshotKey.socketPlaceholder,
            tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        // A jailed VM names the image by its jail paths: its snapshot is its own.
        machine.jailed = configuration.jail != nil
        if configuration.effectiveRestoreMode == .copyOnWrite {
            // Guest RAM in a file is another machine: its snapshot holds no RAM, and a streamed one
            // must never be loaded as if it did.
            machine.memoryFile = .init(path: "@MEMORY@", shared: false)
        }
        return Self.snapshotKey(
            binaryPath: configuration.binaryPath, image: vm.image, machine: machine, warmup: configuration.snapshotWarmup,
            preparingFor: vm.expectedJobLimits, preparedJobs: vm.snapshotPreparedJobs, forkServers: vm.snapshotForkServers)
    }

    /// Writes the booted template's state to `path` over its QMP socket, bounded by
    /// ``Configuration/snapshotSaveTimeout`` and by QEMU's life.
    func saveSnapshot(of template: QEMUVM, to path: String) async throws {
        guard let directory = template.resources.runtimeDirectory, let process = template.resources.process else {
            throw VMError(.bootFailed, "the template VM has no runtime directory")
        }
        let jailed = configuration.jail != nil
        let qmpSocket = try directory.socketPath((jailed ? QEMUJailDirectory.sockets + "/" : "") + Self.qmpSocketName)
        let timeout = configuration.snapshotSaveTimeout
        // The template's RAM is its memfd: only device state goes into the stream.
        let ignoreShared = template.templateMemory != nil
        if jailed {
            // Jailed, QEMU may neither spawn `cat` nor open a file outside its root: it writes to a
            // descriptor of a root-owned file the worker opens and hands over on the QMP socket.
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw VMError(.bootFailed, "cannot create the snapshot file \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            try await Self.untilExit(of: process) {
                try await Self.withDeadline(timeout, what: "saving the VM snapshot") {
                    try await Self.migrate(qmpSocket: qmpSocket, uri: "fd:snapshot", passing: (fd, "snapshot"), ignoreShared: ignoreShared)
                }
            }
        } else {
            try await Self.untilExit(of: process) {
                try await Self.withDeadline(timeout, what: "saving the VM snapshot") {
                    try await Self.migrate(qmpSocket: qmpSocket, uri: "exec:cat > \(path)", passing: nil, ignoreShared: ignoreShared)
                }
            }
        }
        try Self.checkSaved(path)
        if let memory = template.templateMemory {
            // Persisted and sealed only once nothing can write the memfd any more: QEMU is dead.
            process.kill()
            _ = await process.waitForExitIgnoringCancellation()
            template.resources.release(memory.fd)
            let partial = String(path.dropLast(Self.snapshotStateFile.count + 1))
            try QEMUTemplateMemory.persist(
                memory.fd, size: template.configuration.memoryMiB << 20, into: partial, snapshotName: memory.snapshotName)
        }
    }

    private static func checkSaved(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0, info.st_size > 0 else {
            throw VMError(.bootFailed, "QEMU reported the snapshot saved, but \(path) is missing or empty")
        }
    }

    /// Live-migrates the (idle) VM into a file: it is saved running, so a restored VM runs on at once.
    private static func migrate(
        qmpSocket: String, uri: String, passing descriptor: (fd: CInt, name: String)?, ignoreShared: Bool = false
    ) async throws {
        try await QMPClient.withConnection(socketPath: qmpSocket, passing: descriptor) { qmp in
            if ignoreShared {
                // The template's RAM is its memory file: only device state goes into the stream.
                _ = try await qmp.execute("migrate-set-capabilities", arguments: Self.ignoreSharedCapability)
            }
            // QEMU 7.2 throttles migration to 32 MiB/s by default; a file takes what it is given.
            _ = try await qmp.execute("migrate-set-parameters", arguments: #"{"max-bandwidth":1099511627776}"#)
            _ = try await qmp.execute("migrate", arguments: #"{"uri":"\#(uri)"}"#)
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
