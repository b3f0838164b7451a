import AgentProtocol
import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The jail's entries in a VM's runtime directory.
enum QEMUJailDirectory {
    /// Owned by the VM's uid, seen in the jail as ``QEMUJail/Path/run``.
    static let sockets = "j"
    /// The (empty, root-owned) mount point of the jail's root.
    static let root = "r"
}

/// The bodies of QEMU's boot steps (``QEMUBoot/steps(for:)``). Each records what it acquires in the
/// VM's resources as soon as it exists, so a failure at any point is torn down completely.
extension QEMUDriver {
    func prepareRuntimeDirectory(_ vm: QEMUVM) throws {
        Self.cleanLeftoversOnce(under: vm.configuration.runtimeDirectory, logger: vm.logger)
        let directory = try RuntimeDirectory.create(under: vm.configuration.runtimeDirectory, prefix: "q")
        vm.resources.runtimeDirectory = directory
        vm.logger[metadataKey: "runtime_dir"] = "\(directory.path)"
        guard let jail = configuration.jail else {
            vm.agentSocketPath = try directory.socketPath("agent.sock")
            return
        }
        let pool = UIDPool.shared(range: jail.uidRange)
        guard let uid = pool.acquire() else {
            throw VMError(.bootFailed, "every uid of the QEMU jail's range \(jail.uidRange) is in use by a live VM")
        }
        vm.resources.uidPool = pool
        vm.resources.jailUID = uid
        vm.logger[metadataKey: "vmm_uid"] = "\(uid)"
        // `j` is the only directory the jailed QEMU can write: its sockets (and a network VM's proxy
        // state). The owner and vmm records stay in the parent, out of its reach.
        let socketDirectory = directory.file(QEMUJailDirectory.sockets)
        for (path, owner) in [(socketDirectory, uid), (directory.file(QEMUJailDirectory.root), 0)] {
            guard mkdir(path, 0o700) == 0, chown(path, owner, owner == 0 ? 0 : jail.gid) == 0 else {
                throw VMError(.bootFailed, "cannot prepare the jail directory \(path): \(String(cString: strerror(errno)))")
            }
        }
        vm.agentSocketPath = try directory.socketPath(QEMUJailDirectory.sockets + "/agent.sock")
    }

    func spawn(_ vm: QEMUVM, purpose: BootPurpose) async throws {
        guard let directory = vm.resources.runtimeDirectory else { throw VMError(.bootFailed, "no runtime directory") }
        var commandLine = QEMUCommandLine(
            configuration: configuration, vm: vm.configuration, accelerator: configuration.accelerator,
            agentSocketPath: vm.agentSocketPath, tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        let copyOnWrite = configuration.effectiveRestoreMode == .copyOnWrite
        // Descriptors QEMU inherits as its 3 and 4; ours are closed once it is spawned (or failed to be).
        var inherited: [CInt] = []
        defer { for fd in inherited where !vm.resources.heldDescriptors.contains(fd) { close(fd) } }
        switch purpose {
        case .cold: break
        case .template:
            commandLine.qmpSocketPath = try directory.socketPath(Self.qmpSocketName)
            if copyOnWrite {
                let memory = try prepareTemplateMemory(vm)
                inherited = [memory]
                commandLine.memoryFile = .init(path: QEMUTemplateMemory.memoryPath, shared: true)
            }
        case .restore(let snapshot) where copyOnWrite:
            let opened: QEMUTemplateMemory.OpenedSnapshot
            do {
                opened = try QEMUTemplateMemory.open(snapshot: snapshot)
            } catch {
                vm.snapshotMemoryChanged = error is QEMUTemplateMemory.Changed
                throw VMError(.bootFailed, "\(error)")
            }
            inherited = [opened.memory, opened.state]
            vm.snapshotIdentity = opened.identity
            commandLine.memoryFile = .init(path: QEMUTemplateMemory.memoryPath, shared: false)
            commandLine.incomingDeferred = true
            commandLine.qmpSocketPath = try directory.socketPath(Self.qmpSocketName)
        case .restore(let snapshot):
            let state = snapshot + "/" + Self.snapshotStateFile
            commandLine.incomingStatePath = state
            // Jailed, the launcher opens it as root (the file is not in the jail).
            if configuration.jail == nil { inherited = [try Self.openIncomingState(state)] }
        }
        if vm.configuration.network { commandLine.egressStateDirectory = directory.path }
        var executable = configuration.binaryPath
        var arguments = commandLine.arguments
        var environment: [String]?
        if let jail = configuration.jail, let uid = vm.resources.jailUID {
            let launcher = try prepareJail(jail, uid: uid, vm: vm, directory: directory, commandLine: &commandLine, purpose: purpose)
            executable = launcher.executable
            arguments = launcher.arguments(qemuArguments: commandLine.arguments)
            environment = QEMUJailLauncher.environment
        }
        vm.logger.debug("QEMU command line", metadata: ["argv": "\(([executable] + arguments).joined(separator: " "))"])
        vm.spawnedAt = vm.clock.now
        let process = try await VMMProcess.spawn(
            executable: executable, arguments: arguments, environment: environment, passing: inherited,
            stdout: ConsoleRing(capacity: vm.configuration.consoleBufferBytes), stderr: ConsoleRing(capacity: 8 << 10))
        vm.resources.process = process
        directory.recordVMM(pid: process.pid)
        vm.logger[metadataKey: "vmm_pid"] = "\(process.pid)"
    }

    /// A copy-on-write template writes the guest's memory into a fresh memfd, kept by the VM until
    /// its QEMU is dead and the snapshot is saved (``saveSnapshot(of:to:)``).
    private func prepareTemplateMemory(_ vm: QEMUVM) throws -> CInt {
        let name = try snapshotKey(for: vm.configuration).name
        let memory = try QEMUTemplateMemory.templateMemory(memoryMiB: vm.configuration.memoryMiB)
        vm.resources.heldDescriptors.append(memory)
        vm.templateMemory = (memory, name)
        return memory
    }

    /// The jail's launcher for `vm`, with QEMU's command line switched to the jail's paths, and the
    /// VM's cgroup created.
    private func prepareJail(
        _ jail: QEMUJail, uid: UInt32, vm: QEMUVM, directory: RuntimeDirectory, commandLine: inout QEMUCommandLine,
        purpose: BootPurpose
    ) throws -> QEMUJailLauncher {
        let socketDirectory = directory.file(QEMUJailDirectory.sockets)
        let incoming = commandLine.incomingStatePath
        commandLine.jailed = true
        commandLine.agentSocketPath = QEMUJail.Path.run + "/agent.sock"
        if commandLine.qmpSocketPath != nil {
            // The host connects to the same socket by its host path (``saveSnapshot(of:to:)``).
            commandLine.qmpSocketPath = QEMUJail.Path.run + "/" + Self.qmpSocketName
        }
        var fileSizeLimit = jail.maximumFileSizeBytes
        if case .template = purpose {
            // RLIMIT_FSIZE bounds writes through any descriptor, the snapshot's too.
            fileSizeLimit = max(fileSizeLimit, vm.configuration.memoryMiB << 20 + jail.snapshotFileAllowanceBytes)
        }
        var cgroupFiles: [String] = []
        if let limits = jail.cgroup, let memory = configuration.vmMemoryLimitBytes(guestMemoryMiB: vm.configuration.memoryMiB) {
            let name = directory.path.split(separator: "/").last.map(String.init) ?? "vm"
            let cgroup = try QEMUCgroup.create(name: name, memoryLimitBytes: memory, vcpus: vm.configuration.vcpus, limits: limits)
            vm.resources.cgroup = cgroup
            if vm.spawnsStandby { cgroup.setCPUWeight(.standby) }
            cgroupFiles = cgroup.procsFiles
            vm.logger[metadataKey: "cgroup"] = "\(cgroup.memoryDirectory)"
        }
        let kvm = configuration.accelerator == .kvm
        var groups: [UInt32] = []
        if kvm {
            var info = stat()
            if stat("/dev/kvm", &info) == 0, info.st_gid != 0 { groups = [info.st_gid] }
        }
        return QEMUJailLauncher(
            jail: jail, qemuPath: configuration.binaryPath, rootMountPoint: directory.file(QEMUJailDirectory.root),
            socketDirectory: socketDirectory, kernelPath: commandLine.bootsKernel ? vm.configuration.image.kernelPath : nil,
            rootfsPath: vm.configuration.image.rootfsPath,
            incomingStatePath: incoming, keepsProc: commandLine.memoryFile != nil, cgroupProcsFiles: cgroupFiles, uid: uid, groups: groups,
            bindKVM: kvm, fileSizeLimit: fileSizeLimit)
    }

    /// A jailed VM with network: the proxy's listener in QEMU's network namespace, handed to the
    /// worker's one egress proxy (``EgressProxyHost``).
    func openEgress(_ vm: QEMUVM) async throws {
        guard let host = egressProxyHost, let process = vm.resources.process, let directory = vm.resources.runtimeDirectory else {
            throw VMError(.bootFailed, "a jailed VM with network needs the egress proxy")
        }
        let listener = try await NamespaceListener.open(inNetworkNamespaceOf: process.pid, port: QEMUCommandLine.guestProxyPort)
        let name = directory.path.split(separator: "/").last.map(String.init) ?? "vm"
        try await host.register(vm: name, listener: listener, maximumConnections: QEMUCommandLine.egressConnectionsPerVM)
        vm.resources.egress = (host, name)
    }

    func connectAgent(_ vm: QEMUVM) async throws {
        let process = try Self.process(of: vm)
        let (socketPath, timeout, logger) = (vm.agentSocketPath, vm.remaining, vm.logger)
        vm.resources.connection = try await Self.untilExit(of: process) {
            try await AgentConnection.connect(unixSocketPath: socketPath, timeout: timeout, logger: logger)
        }
    }

    func awaitHello(_ vm: QEMUVM) async throws {
        let (process, connection) = (try Self.process(of: vm), try Self.connection(of: vm))
        let timeout = vm.remaining
        vm.hello = try await Self.untilExit(of: process) { try await connection.waitForHello(timeout: timeout) }
    }

    /// A restored guest shares its CRNG state and stale clock with every VM from the same snapshot:
    /// fresh entropy and the host's time go in before any job.
    func resumeAgent(_ vm: QEMUVM) async throws {
        let (process, connection) = (try Self.process(of: vm), try Self.connection(of: vm))
        let (resume, timeout) = (AgentResume.fresh(), vm.remaining)
        vm.hello = try await Self.untilExit(of: process) { try await connection.resume(resume, timeout: timeout) }
    }

    /// The saved state an unjailed QEMU reads as its descriptor 3 (``QEMUCommandLine/incomingStateFD``).
    private static func openIncomingState(_ path: String) throws -> CInt {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw VMError(.bootFailed, "cannot open the snapshot's state \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    private static func process(of vm: QEMUVM) throws -> VMMProcess {
        guard let process = vm.resources.process else { throw VMError(.bootFailed, "QEMU was not started") }
        return process
    }

    private static func connection(of vm: QEMUVM) throws -> AgentConnection {
        guard let connection = vm.resources.connection else { throw VMError(.agentUnreachable, "no agent connection") }
        return connection
    }
}
