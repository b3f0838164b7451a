import AgentProtocol
import Logging
import MicroVM

/// The bodies of QEMU's boot steps (``QEMUBoot/steps(for:)``). Each records what it acquires in the
/// VM's resources as soon as it exists, so a failure at any point is torn down completely.
extension QEMUDriver {
    func prepareRuntimeDirectory(_ vm: QEMUVM) throws {
        Self.cleanLeftoversOnce(under: vm.configuration.runtimeDirectory, logger: vm.logger)
        let directory = try RuntimeDirectory.create(under: vm.configuration.runtimeDirectory, prefix: "q")
        vm.resources.runtimeDirectory = directory
        vm.agentSocketPath = try directory.socketPath("agent.sock")
        vm.logger[metadataKey: "runtime_dir"] = "\(directory.path)"
    }

    func spawn(_ vm: QEMUVM, purpose: BootPurpose) async throws {
        guard let directory = vm.resources.runtimeDirectory else { throw VMError(.bootFailed, "no runtime directory") }
        var commandLine = QEMUCommandLine(
            configuration: configuration, vm: vm.configuration, accelerator: configuration.accelerator,
            agentSocketPath: vm.agentSocketPath, tscKHz: configuration.tscKHz ?? HostTSC.kHz)
        switch purpose {
        case .cold: break
        case .template: commandLine.qmpSocketPath = try directory.socketPath(Self.qmpSocketName)
        case .restore(let snapshot): commandLine.incomingStatePath = snapshot + "/" + Self.snapshotStateFile
        }
        if vm.configuration.network { commandLine.egressStateDirectory = directory.path }
        vm.logger.debug("QEMU command line", metadata: ["argv": "\(([configuration.binaryPath] + commandLine.arguments).joined(separator: " "))"])
        vm.spawnedAt = vm.clock.now
        let process = try await VMMProcess.spawn(
            executable: configuration.binaryPath, arguments: commandLine.arguments,
            stdout: ConsoleRing(capacity: vm.configuration.consoleBufferBytes), stderr: ConsoleRing(capacity: 8 << 10))
        vm.resources.process = process
        directory.recordVMM(pid: process.pid)
        vm.logger[metadataKey: "vmm_pid"] = "\(process.pid)"
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

    private static func process(of vm: QEMUVM) throws -> VMMProcess {
        guard let process = vm.resources.process else { throw VMError(.bootFailed, "QEMU was not started") }
        return process
    }

    private static func connection(of vm: QEMUVM) throws -> AgentConnection {
        guard let connection = vm.resources.connection else { throw VMError(.agentUnreachable, "no agent connection") }
        return connection
    }
}
