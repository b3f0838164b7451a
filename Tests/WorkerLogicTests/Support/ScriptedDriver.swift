import AgentProtocol
import Foundation
import Logging
import MicroVM
import Synchronization

/// A ``MicroVMDriver`` whose VMs cost nothing: each "boots" at once (or fails to, with ``bootError``) and
/// its agent answers every request with what ``script`` returns. It counts VMs as
/// `Tests/WorkerTests/Support/CountingDriver.swift` does, and records every request and host timeout,
/// so a test sees exactly what the Worker would have sent to a guest.
final class ScriptedDriver: MicroVMDriver {
    /// What the guest answers to one request; may wait (a long job) and throws when cancelled.
    typealias Script = @Sendable (RunRequest) async throws -> RunResult

    let name = "scripted"
    private let script: Script
    private let bootError: VMError?
    private let hello: AgentHello
    /// What each VM reports it cost once torn down (``VMUsage/vmmCPUTime``); nil: unknown.
    private let cpuTime: Duration?
    private let state = Mutex(State())

    private struct State {
        var live = 0
        var peak = 0
        var total = 0
        var requests: [RunRequest] = []
        var hostTimeouts: [Duration] = []
        var configurations: [VMConfiguration] = []
    }

    /// - Parameters:
    ///   - bootError: every VM fails to boot with it (the body never runs).
    ///   - hello: what each VM's agent announces (by default this build's revision).
    ///   - cpuTime: what each VM reports it cost the host.
    ///   - script: the guest's answer; by default `ok`, exit 0, the request id on stdout.
    init(
        bootError: VMError? = nil, hello: AgentHello = AgentHello(agentVersion: "scripted", kernel: "none"),
        cpuTime: Duration? = nil, script: @escaping Script = { .ok(for: $0, stdout: $0.id) }
    ) {
        self.bootError = bootError
        self.cpuTime = cpuTime
        self.hello = hello
        self.script = script
    }

    /// VMs between boot and teardown now.
    var live: Int { state.withLock { $0.live } }
    /// The most VMs that were ever live at once.
    var peak: Int { state.withLock { $0.peak } }
    /// VMs asked for so far (failed boots included).
    var total: Int { state.withLock { $0.total } }
    /// Every request sent to a guest, in order.
    var requests: [RunRequest] { state.withLock { $0.requests } }
    /// The host-side bound given with each request.
    var hostTimeouts: [Duration] { state.withLock { $0.hostTimeouts } }
    /// The shape of every VM asked for.
    var configurations: [VMConfiguration] { state.withLock { $0.configurations } }

    func withVM<T: Sendable>(
        _ configuration: VMConfiguration, logger: Logger, usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        defer { usage(VMUsage(vmmCPUTime: cpuTime)) }
        state.withLock {
            $0.live += 1
            $0.total += 1
            $0.peak = max($0.peak, $0.live)
            $0.configurations.append(configuration)
        }
        defer { state.withLock { $0.live -= 1 } }
        if let bootError { throw bootError }
        let session = ScriptedSession(script: script, hello: hello) { request, timeout in
            self.state.withLock {
                $0.requests.append(request)
                $0.hostTimeouts.append(timeout)
            }
        }
        return try await body(session)
    }
}

/// The agent of one scripted VM.
struct ScriptedSession: GuestSession {
    let script: ScriptedDriver.Script
    let hello: AgentHello
    let record: @Sendable (RunRequest, Duration) -> Void
    /// Fixed, so a test can find it in `boot_ms`.
    let bootDuration: Duration = .milliseconds(7)
    var isAlive: Bool { true }

    func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
        record(request, timeout)
        return try await script(request)
    }
}

extension RunResult {
    /// A result as the agent would send it; `verdict` `ok` and exit 0 unless told otherwise.
    static func ok(for request: RunRequest, stdout: String = "", stderr: String = "") -> RunResult {
        with(request, .ok, exitCode: 0, stdout: stdout, stderr: stderr)
    }

    static func with(
        _ request: RunRequest, _ verdict: Verdict, exitCode: Int32? = 0, signal: Int32? = nil, stdout: String = "",
        stderr: String = "", compileOutput: String? = nil, message: String? = nil
    ) -> RunResult {
        RunResult(
            id: request.id, verdict: verdict, exitCode: exitCode, signal: signal, stdout: Data(stdout.utf8),
            stderr: Data(stderr.utf8), stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 12,
            cpuTimeMilliseconds: 5, peakMemoryBytes: 3 << 20, compileOutput: compileOutput.map { Data($0.utf8) },
            message: message)
    }
}

/// A door long jobs wait at: closed until the test opens it. Waiting polls, so a cancelled wait ends at
/// once (`Task.sleep` throws), as a cancelled guest run does.
final class Gate: Sendable {
    private let isOpen = Atomic<Bool>(false)

    func open() { isOpen.store(true, ordering: .releasing) }

    func wait() async throws {
        while !isOpen.load(ordering: .acquiring) {
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
