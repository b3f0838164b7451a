import AgentProtocol
import Logging
import MicroVM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Boots QEMU `microvm` machines from the guest image and talks to their agent over virtio-serial.
///
/// Each ``withVM(_:logger:_:)`` boots a fresh VM in named steps (validate, prepare runtime
/// directory, spawn VMM, connect agent channel, await hello), each logged with its duration, and
/// destroys it afterwards whatever happens: QEMU's process group is SIGKILLed and reaped and the
/// runtime directory removed, also when the body throws or the task is cancelled.
public struct QEMUDriver: MicroVMDriver {
    public let configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// `qemu-tcg` or `qemu-kvm`; `qemu-auto` while an `.auto` choice has not been probed yet.
    public var name: String {
        switch configuration.accelerator {
        case .tcg: return "qemu-tcg"
        case .kvm: return "qemu-kvm"
        case .auto:
            let resolved = AcceleratorChoice.cached(configuration: configuration, image: nil)
            return resolved.map { "qemu-\($0.rawValue)" } ?? "qemu-auto"
        }
    }

    public func withVM<T: Sendable>(
        _ vm: VMConfiguration,
        logger: Logger,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        let accelerator = try await resolveAccelerator(image: vm.image, runtimeRoot: vm.runtimeDirectory, logger: logger)
        var resources = VMResources()
        let session: QEMUSession
        do {
            session = try await start(vm, accelerator: accelerator, resources: &resources, logger: logger)
        } catch {
            let failure = await resources.bootFailure(error)
            await resources.destroy(logger: logger)
            if !(failure is CancellationError) {
                logger.debug("VM boot failed", metadata: ["error": "\(failure)"])
            }
            throw failure
        }
        do {
            let value = try await body(session)
            await resources.destroy(logger: logger)
            return value
        } catch {
            await resources.destroy(logger: logger)
            throw error
        }
    }

    private func resolveAccelerator(image: GuestImage, runtimeRoot: String, logger: Logger) async throws -> QEMUCommandLine.ResolvedAccelerator {
        switch configuration.accelerator {
        case .tcg: return .tcg
        case .kvm: return .kvm
        case .auto:
            // The image must exist before a probe can boot it; report that as such, not as "no KVM".
            try Self.validateImage(image)
            return await AcceleratorChoice.resolve(configuration: configuration, image: image, runtimeRoot: runtimeRoot, logger: logger)
        }
    }

    /// How a VM comes up.
    enum BootMode: Sendable {
        /// The kernel boots and the agent says hello.
        case cold
        /// A cold boot with a QMP socket, to be saved as a snapshot.
        case template
        /// QEMU loads a saved state; the agent is resumed (reseeded, clock set) before it is used.
        case restore(statePath: String)
    }

    /// The boot sequence. Everything acquired is recorded in `resources` as soon as it exists.
    func boot(
        _ vm: VMConfiguration,
        accelerator: QEMUCommandLine.ResolvedAccelerator,
        mode: BootMode = .cold,
        resources: inout VMResources,
        logger: Logger
    ) async throws -> QEMUSession {
        var logger = logger
        logger[metadataKey: "vmm"] = "qemu-\(accelerator.rawValue)"
        var steps = BootSteps(logger: logger)
        let clock = ContinuousClock()
        let deadline = clock.now + vm.bootTimeout

        try await steps.run("validate") { try validate(vm) }
        // Kernel and root filesystem from the same image even if image/current is re-pointed meanwhile.
        let vm = vm.resolvingSymlinks()

        let directory = try await steps.run("prepare runtime dir") {
            Self.cleanLeftoversOnce(under: vm.runtimeDirectory, logger: logger)
            return try RuntimeDirectory.create(under: vm.runtimeDirectory, prefix: "q")
        }
        resources.runtimeDirectory = directory
        let socketPath = try directory.socketPath("agent.sock")
        logger[metadataKey: "runtime_dir"] = "\(directory.path)"

        var commandLine = QEMUCommandLine(
            configuration: configuration, vm: vm, accelerator: accelerator, agentSocketPath: socketPath,
            tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        switch mode {
        case .cold: break
        case .template: commandLine.qmpSocketPath = try directory.socketPath(Self.qmpSocketName)
        case .restore(let statePath): commandLine.incomingStatePath = statePath
        }
        if vm.network { commandLine.egressStateDirectory = directory.path }
        logger.debug("QEMU command line", metadata: ["argv": "\(([configuration.binaryPath] + commandLine.arguments).joined(separator: " "))"])
        let consoleBytes = vm.consoleBufferBytes
        let binaryPath = configuration.binaryPath
        let spawnStart = clock.now
        let process = try await steps.run("spawn VMM") {
            try await VMMProcess.spawn(
                executable: binaryPath, arguments: commandLine.arguments,
                stdout: ConsoleRing(capacity: consoleBytes), stderr: ConsoleRing(capacity: 8 << 10))
        }
        resources.process = process
        directory.recordVMM(pid: process.pid)
        logger[metadataKey: "vmm_pid"] = "\(process.pid)"

        let connectLogger = logger
        let connection = try await steps.run("connect agent channel") {
            try await Self.untilExit(of: process) {
                try await AgentConnection.connect(
                    unixSocketPath: socketPath, timeout: max(.zero, deadline - clock.now), logger: connectLogger)
            }
        }
        resources.connection = connection

        let hello: AgentHello
        if case .restore = mode {
            let resume = AgentResume.fresh()
            hello = try await steps.run("resume agent") {
                try await Self.untilExit(of: process) {
                    try await connection.resume(resume, timeout: max(.zero, deadline - clock.now))
                }
            }
        } else {
            hello = try await steps.run("await hello") {
                try await Self.untilExit(of: process) {
                    try await connection.waitForHello(timeout: max(.zero, deadline - clock.now))
                }
            }
        }
        let bootDuration = clock.now - spawnStart
        logger.debug(
            "VM booted",
            metadata: [
                "boot_ms": "\(BootSteps.milliseconds(bootDuration))", "agent": "\(hello.agentVersion)",
                "kernel": "\(hello.kernel)",
            ])
        return QEMUSession(hello: hello, bootDuration: bootDuration, connection: connection, resources: resources, logger: logger)
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
    }
}

extension QEMUDriver {
    /// The arguments (after argv[0]) the driver passes to QEMU for `vm` with `accelerator` (`.auto`
    /// counts as `.tcg`), so a benchmark can time a bare QEMU launch with exactly the same machine;
    /// with `incomingStatePath`, the arguments of a VM restored from that snapshot.
    public func commandLineArguments(
        for vm: VMConfiguration, accelerator: Accelerator, agentSocketPath: String, incomingStatePath: String? = nil
    ) -> [String] {
        var commandLine = QEMUCommandLine(
            configuration: configuration, vm: vm.resolvingSymlinks(), accelerator: accelerator == .kvm ? .kvm : .tcg,
            agentSocketPath: agentSocketPath, tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        commandLine.incomingStatePath = incomingStatePath
        return commandLine.arguments
    }

    /// The snapshot VMs shaped like `vm` start from (made now if missing), for a benchmark's bare
    /// restore; needs ``Configuration/snapshotDirectory`` and an accelerator other than `.auto`.
    public func snapshotState(for vm: VMConfiguration, logger: Logger) async throws -> String {
        guard let root = configuration.snapshotDirectory, configuration.accelerator != .auto else {
            throw VMError(.invalidConfiguration, "snapshotState needs a snapshot directory and a fixed accelerator")
        }
        try validate(vm)
        let accelerator: QEMUCommandLine.ResolvedAccelerator = configuration.accelerator == .kvm ? .kvm : .tcg
        return try await snapshot(for: vm.resolvingSymlinks(), accelerator: accelerator, store: try SnapshotStore(root: root), logger: logger).path
    }

}
