import DescriptorPassing
import Logging
import MicroVM
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one egress proxy process of this worker's jailed VMs (`codebench-egress --listeners 3`),
/// started once, unprivileged, and handed each network VM's listener (``NamespaceListener``) over
/// a `SOCK_SEQPACKET` control socket (the messages are EgressProxy's `ListenerService`).
///
/// It runs as its own uid and gid with no capabilities, `no_new_privs` and a parent-death signal,
/// in the host's network namespace (it connects out, after its address checks). If it dies, the
/// next network VM starts a new one.
final class EgressProxyHost: Sendable {
    /// What makes two hosts the same process.
    struct Settings: Sendable, Hashable {
        var executable: String
        var setprivPath: String
        var uid: UInt32
        var gid: UInt32
        var arguments: [String]
    }

    let settings: Settings
    private let state = Mutex<Running?>(nil)
    private let starting = Mutex<Task<Void, any Error>?>(nil)

    private struct Running: Sendable {
        var process: VMMProcess
        var control: CInt
    }

    private static let hosts = Mutex<[Settings: EgressProxyHost]>([:])

    /// The process-wide host for `settings`.
    static func shared(_ settings: Settings) -> EgressProxyHost {
        hosts.withLock { all in
            if let host = all[settings] { return host }
            let host = EgressProxyHost(settings: settings)
            all[settings] = host
            return host
        }
    }

    private init(settings: Settings) {
        self.settings = settings
    }

    /// Starts the proxy unless it runs, and checks that it is alive a moment later: a worker that
    /// allows network must fail at start, not on its first network job. Concurrent callers share
    /// one start.
    func ensureRunning() async throws {
        if isRunning { return }
        let task = starting.withLock { current -> Task<Void, any Error> in
            if let current { return current }
            let task = Task { try await self.start() }
            current = task
            return task
        }
        defer { starting.withLock { if $0 == task { $0 = nil } } }
        try await task.value
    }

    private func start() async throws {
        if isRunning { return }
        let (process, control) = try await spawn()
        try? await Task.sleep(for: .milliseconds(100))
        if let status = process.exitStatus {
            close(control)
            await process.closeOutputs()
            throw VMError(
                .vmmUnavailable,
                "the egress proxy \(settings.executable) exited at start (\(status)): \(process.stderr.tail(maxBytes: 1024))")
        }
        let previous = state.withLock { current -> Running? in
            defer { current = Running(process: process, control: control) }
            return current
        }
        if let previous { Self.stop(previous) }
    }

    var isRunning: Bool {
        state.withLock { $0 }.map { $0.process.exitStatus == nil } ?? false
    }

    /// Hands `listener` to the proxy as `vm`'s (closing our copy). Starts the proxy when it is not running.
    func register(vm name: String, listener: CInt, maximumConnections: Int) async throws {
        defer { close(listener) }
        try await ensureRunning()
        guard let control = state.withLock({ $0?.control }) else { throw VMError(.bootFailed, "the egress proxy is not running") }
        guard Self.send(control, "add \(name) \(maximumConnections)", descriptor: listener) else {
            throw VMError(.bootFailed, "cannot hand the egress listener to the proxy: \(String(cString: strerror(errno)))")
        }
    }

    /// Tells the proxy to stop accepting for `vm`. Harmless when it is gone.
    func unregister(vm name: String) {
        guard let control = state.withLock({ $0?.control }) else { return }
        _ = Self.send(control, "remove \(name)", descriptor: nil)
    }

    /// The last lines the proxy wrote (one per connection), for diagnostics.
    var recentOutput: String {
        state.withLock { $0 }?.process.stderr.tail(maxBytes: 8192) ?? ""
    }

    private func spawn() async throws -> (VMMProcess, CInt) {
        var pair: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw VMError(.vmmUnavailable, "cannot create the egress proxy's control socket: \(String(cString: strerror(errno)))")
        }
        defer { close(pair[1]) }
        let arguments = [
            "--reuid=\(settings.uid)", "--regid=\(settings.gid)", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
            "--no-new-privs", "--pdeathsig=KILL", "--", settings.executable, "--listeners", "3",
        ] + settings.arguments
        do {
            let process = try await VMMProcess.spawn(
                executable: settings.setprivPath, arguments: arguments, environment: QEMUJailLauncher.environment,
                passing: [pair[1]], stdout: ConsoleRing(capacity: 4 << 10), stderr: ConsoleRing(capacity: 64 << 10))
            return (process, pair[0])
        } catch {
            close(pair[0])
            throw error
        }
    }

    private static func stop(_ running: Running) {
        close(running.control)
        running.process.kill()
    }

    /// One control message; false when the proxy's end is gone.
    private static func send(_ control: CInt, _ text: String, descriptor: CInt?) -> Bool {
        let bytes = Array(text.utf8)
        return DescriptorPassing.send(control, bytes[...], descriptor: descriptor) == bytes.count
    }
}
