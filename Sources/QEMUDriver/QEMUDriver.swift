import AgentProtocol
import Logging
import MicroVM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Boots QEMU `microvm` machines from the guest image and talks to their agent over virtio-serial.
///
/// Each ``withVM(_:logger:_:)`` brings a fresh VM up with MicroVM's ``VMBoot`` (restored from a
/// snapshot when ``Configuration/snapshotDirectory`` is set, else cold) in named steps (validate,
/// prepare runtime dir, spawn VMM, connect agent channel, await hello or resume agent), each logged
/// with its duration, and destroys it afterwards whatever happens: QEMU's process group is SIGKILLed
/// and reaped and the runtime directory removed, also when the body throws or the task is cancelled.
public struct QEMUDriver: MicroVMDriver {
    public let configuration: Configuration
    /// QEMUs spawned ahead of copy-on-write restores, when ``Configuration/standbyVMMs`` is above 0;
    /// copies of the driver share it.
    let standby: QEMUStandbyPool?

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        standby = configuration.standbyVMMs > 0 && configuration.effectiveRestoreMode == .copyOnWrite
            ? QEMUStandbyPool(capacity: configuration.standbyVMMs) : nil
    }

    /// `qemu-tcg` or `qemu-kvm`.
    public var name: String { configuration.accelerator.kind.rawValue }

    public func withVM<T: Sendable>(
        _ vm: VMConfiguration,
        logger: Logger,
        usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        try await VMBoot(QEMUBoot(driver: self)).withVM(vm, logger: logger, usage: usage, body)
    }

    /// Checks what can be checked without booting.
    func validate(_ vm: VMConfiguration) throws {
        if vm.network {
            let proxy = configuration.resolvedEgressProxyPath
            guard access(proxy, X_OK) == 0 else {
                throw VMError(.invalidConfiguration, "a VM with network needs the egress proxy, and \(proxy) is not an executable file")
            }
        }
        guard (1...64).contains(vm.vcpus) else {
            throw VMError(.invalidConfiguration, "vcpus must be between 1 and 64, not \(vm.vcpus)")
        }
        guard (32...(1 << 20)).contains(vm.memoryMiB) else {
            throw VMError(.invalidConfiguration, "memoryMiB must be between 32 and 1048576, not \(vm.memoryMiB)")
        }
        guard vm.bootTimeout > .zero else {
            throw VMError(.invalidConfiguration, "bootTimeout must be positive")
        }
        guard access(configuration.binaryPath, X_OK) == 0 else {
            throw VMError(.vmmUnavailable, "QEMU is not executable at \(configuration.binaryPath) (install qemu-system-x86: scripts/setup)")
        }
        try Self.validateImage(vm.image)
    }

    static func validateImage(_ image: GuestImage) throws {
        for path in [image.kernelPath, image.rootfsPath] {
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(path, R_OK) == 0 else {
                throw VMError(.imageMissing, "the guest image is missing: \(path) does not exist or is unreadable; build it with scripts/build-guest-image")
            }
        }
    }

    /// Runs `body` but gives up as soon as QEMU exits: a VMM that died at start must not make the
    /// boot wait for its full timeout.
    static func untilExit<T: Sendable>(of process: VMMProcess, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let status = try await process.waitForExit()
                throw VMError(.bootFailed, "QEMU exited (\(status))")
            }
            defer { group.cancelAll() }
            guard let value = try await group.next() ?? nil else {
                throw VMError(.bootFailed, "boot step ended without a value")
            }
            return value
        }
    }

    private static let leftoversCleaned = Mutex<Set<String>>([])

    /// Leftovers of crashed earlier runs are cleaned once per process and runtime root.
    static func cleanLeftoversOnce(under root: String, logger: Logger) {
        let first = leftoversCleaned.withLock { $0.insert(root).inserted }
        guard first else { return }
        let removed = RuntimeDirectory.cleanLeftovers(under: root, logger: logger)
        if removed > 0 { logger.info("cleaned leftover runtime directories", metadata: ["count": "\(removed)", "root": "\(root)"]) }
        let cgroups = QEMUCgroup.sweepLeftovers(runtimeRoot: root)
        if cgroups > 0 { logger.info("removed leftover VM cgroups", metadata: ["count": "\(cgroups)", "root": "\(root)"]) }
    }
}

extension QEMUDriver {
    /// The arguments (after argv[0]) the driver passes to QEMU for `vm` with `accelerator`, so a
    /// benchmark can time a bare QEMU launch with exactly the same machine; with `incomingStatePath`,
    /// the arguments of a VM restored from that snapshot, which QEMU reads from its descriptor 3
    /// (the caller opens the file there).
    public func commandLineArguments(
        for vm: VMConfiguration, accelerator: Accelerator, agentSocketPath: String, incomingStatePath: String? = nil
    ) -> [String] {
        var commandLine = QEMUCommandLine(
            configuration: configuration, vm: vm.resolvingSymlinks(), accelerator: accelerator,
            agentSocketPath: agentSocketPath, tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        commandLine.incomingStatePath = incomingStatePath
        return commandLine.arguments
    }

    /// The snapshot VMs shaped like `vm` start from (made now if missing), for a benchmark's bare
    /// restore; needs ``Configuration/snapshotDirectory``.
    public func snapshotState(for vm: VMConfiguration, logger: Logger) async throws -> String {
        guard let root = configuration.snapshotDirectory else {
            throw VMError(.invalidConfiguration, "snapshotState needs a snapshot directory")
        }
        let snapshot = try await VMBoot(QEMUBoot(driver: self)).snapshot(
            for: vm.resolvingSymlinks(), store: try SnapshotStore(root: root), logger: logger)
        return snapshot.directory + "/" + Self.snapshotStateFile
    }
}
