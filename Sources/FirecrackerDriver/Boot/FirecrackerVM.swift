#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AgentProtocol
import Logging
import MicroVM
import NIOCore

/// One VM's state while ``FirecrackerDriver/withVM(_:logger:_:)`` runs: what the boot steps created,
/// so that ``tearDown()`` undoes exactly that. Used by one task only.
final class FirecrackerVM: BootingVM {
    let id: String
    let configuration: VMConfiguration
    let driver: FirecrackerDriver.Configuration
    let logger: Logger
    let group: any EventLoopGroup
    let uidPool: UIDPool?
    let clock = ContinuousClock()

    /// Guest console (when enabled) and VMM/jailer stderr.
    private(set) var output: ConsoleRing
    /// Firecracker's own log (from the logger FIFO).
    let firecrackerLog: ConsoleRing
    /// Firecracker's metrics lines; only the latest flushes are kept.
    let metrics = ConsoleRing(capacity: 16 << 10)

    private(set) var layout: FirecrackerLayout
    private(set) var uid: UInt32?
    private(set) var process: VMMProcess?
    private(set) var startedAt: ContinuousClock.Instant?
    /// The boot deadline: VMM start plus the configuration's boot timeout.
    private(set) var deadline: ContinuousClock.Instant
    /// Firecracker's pid when it is not our child (the jailer cloned it into a new PID namespace).
    private var jailedPID: pid_t?
    private var drains: [any Channel] = []
    private var directoryCreated = false
    private(set) var agent: AgentConnection?
    private(set) var hello: AgentHello?
    /// The boot step that failed and its error as thrown, to tell a refused snapshot from a slow host.
    var failedStep: String?
    var failureCause: (any Error)?
    /// The snapshot files a restore loads, host paths (linked into the VM's directory, or the store's).
    var snapshotFiles: (state: String, memory: String)?
    private var firecrackerBinary = ""
    private var runtimeDirectory: RuntimeDirectory?

    init(
        id: String, configuration: VMConfiguration, driver: FirecrackerDriver.Configuration,
        uidPool: UIDPool?, logger: Logger, group: any EventLoopGroup
    ) {
        self.id = id
        self.configuration = configuration
        self.driver = driver
        self.uidPool = uidPool
        self.logger = logger
        self.group = group
        output = ConsoleRing(capacity: configuration.consoleBufferBytes)
        firecrackerLog = ConsoleRing(capacity: driver.logBufferBytes)
        deadline = ContinuousClock.now + configuration.bootTimeout
        if let jailer = driver.jailer {
            layout = .jailed(
                chrootBaseDirectory: jailer.chrootBaseDirectory,
                execFileName: driver.firecrackerPath.lastPathComponent, vmID: id)
        } else {
            layout = .plain(runtimeDirectory: configuration.runtimeDirectory, vmID: id, image: configuration.image)
        }
    }

    var remaining: Duration { max(.zero, deadline - clock.now) }

    /// An API client whose calls never outlive the boot deadline.
    func api() -> FirecrackerAPIClient {
        api(timeout: min(driver.apiRequestTimeout, remaining))
    }

    /// An API client for calls after the boot (saving a snapshot), bounded by `timeout` each.
    func api(timeout: Duration) -> FirecrackerAPIClient {
        FirecrackerAPIClient(socketPath: layout.apiSocket, requestTimeout: timeout, eventLoopGroup: group)
    }

    // MARK: Steps

    func validate() throws(VMError) {
        guard (1...32).contains(configuration.vcpus) else {
            throw VMError(.invalidConfiguration, "vcpus must be in 1...32 (Firecracker's limit), got \(configuration.vcpus)")
        }
        guard configuration.memoryMiB >= 32 else {
            throw VMError(.invalidConfiguration, "memoryMiB must be at least 32, got \(configuration.memoryMiB)")
        }
        guard !configuration.network else {
            throw VMError(.invalidConfiguration, "the Firecracker driver attaches no network device; network=true is not supported yet")
        }
        for path in [configuration.image.kernelPath, configuration.image.rootfsPath] where access(path, R_OK) != 0 {
            throw VMError(.imageMissing, "guest image file \(path) is missing or unreadable (build it with scripts/build-guest-image)")
        }
        guard let binary = FirecrackerInstallation.resolveExecutable(driver.firecrackerPath) else {
            throw VMError(.vmmUnavailable, "firecracker binary \(driver.firecrackerPath) not found (not on PATH and not an executable path)")
        }
        firecrackerBinary = binary
        if let jailer = driver.jailer {
            guard FirecrackerInstallation.resolveExecutable(jailer.jailerPath) != nil else {
                throw VMError(.vmmUnavailable, "jailer binary \(jailer.jailerPath) not found or not executable")
            }
            guard binary.lastPathComponent.contains("firecracker") else {
                throw VMError(.invalidConfiguration, "the jailer only execs files whose name contains 'firecracker', got \(binary)")
            }
        }
        try layout.validateSocketPaths()
    }

    func prepareRuntimeDirectory() throws {
        if let jailer = driver.jailer {
            guard let uid = uidPool?.acquire() else {
                throw VMError(.vmmUnavailable, "no free uid in the jailer's range \(jailer.uidRange): too many VMs at once")
            }
            self.uid = uid
            directoryCreated = true
            try JailPreparation.prepareJail(layout, image: configuration.image, uid: uid, gid: jailer.gid, logger: logger)
            // Outside the chroot (the VM cannot touch it), in RuntimeDirectory's format: sweeping
            // `<chroot_base>/firecracker` with RuntimeDirectory.cleanLeftovers cleans up after a dead worker.
            recordIdentity(ProcessIdentity.current, in: "owner")
        } else {
            // MicroVM's RuntimeDirectory records this process as the owner (and later the VMM), so a
            // sibling worker's leftover sweep kills the VMM and removes the directory if we die.
            let directory: RuntimeDirectory
            do {
                directory = try RuntimeDirectory.create(under: configuration.runtimeDirectory, prefix: "fc-")
            } catch let error as VMError {
                throw error
            } catch {
                throw VMError(.bootFailed, "cannot create the runtime directory: \(error)")
            }
            runtimeDirectory = directory
            layout = .plain(directory: directory.path, vmID: id, image: configuration.image)
            directoryCreated = true
            try JailPreparation.preparePlain(layout)
        }
    }

    func spawn() async throws {
        let executable: String
        let arguments: [String]
        if let jailer = driver.jailer, let uid {
            let command = JailerCommand(
                id: id, uid: uid, firecrackerPath: firecrackerBinary, configuration: jailer,
                vcpus: configuration.vcpus, memoryMiB: configuration.memoryMiB,
                apiSocketInJail: layout.inVMM(layout.apiSocket))
            executable = command.executable
            arguments = command.arguments
        } else {
            executable = firecrackerBinary
            arguments = ["--api-sock", layout.apiSocket, "--id", id]
        }
        logger.debug("starting the VMM", metadata: ["command": "\(([executable] + arguments).joined(separator: " "))"])
        startedAt = clock.now
        deadline = clock.now + configuration.bootTimeout
        do {
            // One ring for both streams: Firecracker's own messages and the guest console, in order.
            process = try await VMMProcess.spawn(
                executable: executable, arguments: arguments, environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                stdout: output, stderr: output, eventLoopGroup: group)
        } catch let error as VMError {
            throw error
        } catch {
            throw VMError(.vmmUnavailable, "cannot start \(executable): \(error)")
        }
        recordVMM(pid: process!.pid)
    }

    /// Where a leftover sweep finds the VMM to kill: the jailer at first, Firecracker itself once the
    /// jailer has cloned it into a new PID namespace and exited.
    private func recordVMM(pid: pid_t) {
        if let runtimeDirectory {
            runtimeDirectory.recordVMM(pid: pid)
        } else if let identity = ProcessIdentity.of(pid: pid) {
            recordIdentity(identity, in: "vmm")
        }
    }

    private func recordIdentity(_ identity: ProcessIdentity, in name: String) {
        let path = layout.ownedDirectory + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let text = Array((identity.description + "\n").utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func waitForAPISocket() async throws {
        let limit = clock.now + min(driver.apiSocketTimeout, remaining)
        while true {
            if canConnect(toUnixSocket: layout.apiSocket) {
                try await awaitJailerHandOver(until: limit)
                return
            }
            if let death = vmmDeath() {
                throw VMError(.bootFailed, "\(death) before its API socket appeared")
            }
            guard clock.now < limit else {
                throw VMError(.bootTimeout, "the API socket \(layout.apiSocket) did not accept connections within \(driver.apiSocketTimeout)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// With `--new-pid-ns` the jailer clones Firecracker, writes its pid to `<chroot>/firecracker.pid`
    /// and exits; the API socket can appear before that. Wait for it, so liveness checks and the
    /// leftover record name Firecracker itself.
    private func awaitJailerHandOver(until limit: ContinuousClock.Instant) async throws {
        guard driver.jailer?.newPIDNamespace == true else { return }
        while jailedPID == nil {
            if let death = vmmDeath() { throw VMError(.bootFailed, death) }
            guard clock.now < limit else {
                throw VMError(.bootTimeout, "the jailer did not hand over to firecracker (no exit, no pid file) within \(driver.apiSocketTimeout)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    func startDraining(fifo: String, into ring: ConsoleRing) async throws {
        let fd = try FileSystem.openFIFOForDraining(fifo)
        do {
            drains.append(try await PipeDrain.start(fd: fd, into: ring, group: group))
        } catch {
            close(fd)
            throw error
        }
    }

    func connectAgent() async throws {
        let options = AgentConnection.Options(
            handshake: .firecrackerVsock(port: driver.agentVsockPort), retryInterval: .milliseconds(10))
        // Short connect windows, so a VMM that died is noticed at once rather than at the boot deadline.
        while true {
            do {
                agent = try await AgentConnection.connect(
                    unixSocketPath: layout.vsockSocket, options: options,
                    timeout: min(.milliseconds(500), remaining), logger: logger, eventLoopGroup: group)
                return
            } catch let error as VMError where error.code == .agentUnreachable {
                if let death = vmmDeath() { throw VMError(.bootFailed, "\(death) while the guest was booting") }
                guard remaining > .zero else {
                    throw VMError(.bootTimeout, "the guest agent did not accept a vsock connection on port \(driver.agentVsockPort) within the boot timeout of \(configuration.bootTimeout): \(error.message)")
                }
            }
        }
    }

    func awaitHello() async throws {
        guard let agent else { throw VMError(.agentUnreachable, "no agent connection") }
        hello = try await agent.waitForHello(timeout: max(remaining, .milliseconds(1)))
    }

    /// A restored guest shares its CRNG state and stale clock with every VM from the same snapshot:
    /// fresh entropy and the host's time go in before any job, answered by a hello with our nonce.
    func resumeAgent() async throws {
        guard let agent else { throw VMError(.agentUnreachable, "no agent connection") }
        hello = try await agent.resume(AgentResume.fresh(), timeout: max(remaining, .milliseconds(1)))
    }

    // MARK: Liveness

    /// Nil while Firecracker runs; otherwise how it ended, for messages.
    func vmmDeath() -> String? {
        guard let process, let status = process.exitStatus else { return nil }
        if let jailer = driver.jailer, jailer.newPIDNamespace, status == .exited(0), let root = layout.chrootDirectory {
            // The jailer exits once it has cloned Firecracker into the new PID namespace.
            if jailedPID == nil, let text = readSmallFile(root + "/" + firecrackerBinary.lastPathComponent + ".pid"),
                let pid = text.split(whereSeparator: \.isWhitespace).first.flatMap({ pid_t($0) })
            {
                jailedPID = pid
                recordVMM(pid: pid)
            }
            guard let pid = jailedPID else { return "the jailer exited without starting firecracker" }
            return isRunning(pid) ? nil : "firecracker (pid \(pid)) exited"
        }
        return (driver.jailer == nil ? "firecracker" : "the jailer/firecracker") + " ended with \(status)"
    }

    /// Lets the drains catch up before an error is built: Firecracker logs why it refused a request
    /// just before it answers, and a dying VMM's last words may still be in the pipe. At most 250 ms,
    /// plus 500 ms for a dead VMM's pipes to reach EOF.
    func settleDiagnostics() async {
        // A VMM that has died has said all it will: once its pipes reach EOF (bounded), its last words
        // are in the ring, however far behind the drains run on a loaded host.
        if let process, vmmDeath() != nil { await process.waitForOutputEOF(within: .milliseconds(500)) }
        // The drains run on other threads; on a loaded host a few milliseconds of quiet prove little,
        // and this only runs on a failed boot, where a fuller error is worth a quarter second at most.
        var last = -1
        for _ in 0..<10 {
            let total = firecrackerLog.totalBytes + output.totalBytes
            if total == last { return }
            last = total
            try? await Task.sleep(for: .milliseconds(25))
        }
    }

    /// The end of everything the VMM said, for an error.
    func diagnostics() -> String {
        var text = ""
        let log = firecrackerLog.tail(maxBytes: 2048)
        if !log.isEmpty { text += "firecracker log:\n\(log)\n" }
        let out = output.tail(maxBytes: 4096)
        if !out.isEmpty { text += "output:\n\(out)" }
        return text
    }

    // MARK: Teardown

    /// Kills the VMM's process group, reaps it, closes every socket and drain, removes the runtime
    /// directory or jail (and the jailer's cgroup), releases the uid. Runs to completion even when
    /// the task is cancelled; safe to call after any partial boot. Returns the VMM's host CPU time
    /// when it was our child to the end (not a jailer's Firecracker in a PID namespace of its own).
    @discardableResult
    func tearDown() async -> Duration? {
        // The VMM dies before the agent's connection closes, which would wake the guest for nothing
        // (as in QEMU's teardown, VMResources.destroy).
        var cpuTime: Duration?
        if let process {
            process.kill()
            _ = await process.waitForExitIgnoringCancellation()
        }
        if let agent { await agent.close() }
        if let process {
            await process.closeOutputs()
            if let pid = jailedPID ?? readJailedPID() {
                kill(pid, SIGKILL)
                // Not our child: wait for init to reap it before removing its cgroup and files.
                var waited = 0
                while isRunning(pid), waited < 2000 {
                    usleep(1000)
                    waited += 1
                }
            } else {
                cpuTime = process.cpuTime
            }
        }
        for drain in drains { try? await drain.close() }
        drains.removeAll()
        if directoryCreated { JailPreparation.remove(layout, logger: logger) }
        if let uid { uidPool?.release(uid) }
        uid = nil
        process = nil
        return cpuTime
    }

    private func readJailedPID() -> pid_t? {
        guard driver.jailer?.newPIDNamespace == true, let root = layout.chrootDirectory,
            let text = readSmallFile(root + "/" + firecrackerBinary.lastPathComponent + ".pid")
        else { return nil }
        return text.split(whereSeparator: \.isWhitespace).first.flatMap { pid_t($0) }
    }
}

/// True while `pid` exists and is not a zombie. Firecracker cloned by the jailer into a new PID
/// namespace is not our child: once killed it stays a zombie until init reaps it.
func isRunning(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = ProcessStat.of(pid: pid) else { return false }
    return stat.state != "Z"
}

/// True when a Unix stream socket accepts a connection (the file existing is not enough: Firecracker
/// binds before it listens).
func canConnect(toUnixSocket path: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
        }
    }
}
