import AgentProtocol
import Logging

/// A VMM that can boot a fresh microVM from the guest image and hand out a session with its agent.
///
/// Drivers are values that hold only configuration; every VM lives inside one ``withVM(_:logger:_:)``
/// call, so teardown (process killed, sockets and temporary files removed) is guaranteed by scope,
/// also when the body throws or the calling task is cancelled.
public protocol MicroVMDriver: Sendable {
    /// What the driver is, for logs, results and metrics: `qemu-tcg`, `qemu-kvm`, `firecracker`.
    var name: String { get }

    /// Boots a VM, waits for its agent's hello, runs `body`, then destroys the VM whatever happens,
    /// and once it is gone (also when the body throws) hands `usage` what the VM cost the host. A
    /// driver that cannot measure reports an unknown cost; one in front of another passes `usage` on.
    func withVM<T: Sendable>(
        _ configuration: VMConfiguration,
        logger: Logger,
        usage: @escaping @Sendable (VMUsage) -> Void,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T
}

extension MicroVMDriver {
    /// ``withVM(_:logger:usage:_:)`` for a caller that does not ask what the VM cost.
    public func withVM<T: Sendable>(
        _ configuration: VMConfiguration,
        logger: Logger,
        _ body: (any GuestSession) async throws -> T
    ) async throws -> T {
        try await withVM(configuration, logger: logger, usage: { _ in }, body)
    }
}

/// A live connection to the agent of one booted VM.
public protocol GuestSession: Sendable {
    /// What the agent announced when it came up.
    var hello: AgentHello { get }
    /// How long the caller of `withVM` waited for this VM: from the start of the VMM process to the
    /// agent's hello, or, for a VM booted ahead of the job (``WarmVMPool``), the hand-off alone.
    var bootDuration: Duration { get }
    /// Whether the agent connection is still open: false once the VMM has died or the guest closed it.
    var isAlive: Bool { get }
    /// Sends one request and waits for its result. `timeout` is the host-side bound, which must be
    /// larger than the wall-time limit inside the request: the guest is not trusted to stop itself.
    func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult
    /// ``run(_:timeout:)`` that also hands the agent's ``OutputChunk`` messages to `output` while the run
    /// goes on (a request with ``RunRequest/streamOutput``). Only chunks that keep the rules get through
    /// (``OutputChunk/problem(expectedID:expectedOffset:limit:)``): in order, within the request's output limit.
    func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler?) async throws -> RunResult
}

/// Takes a streamed run's output chunks. Called on the agent channel's event loop, one chunk at a time: it
/// must return at once (hand the chunk to a bounded queue), never block, or the frame reader stalls.
public typealias OutputChunkHandler = @Sendable (OutputChunk) -> Void

extension GuestSession {
    /// Sessions that cannot stream run the request without: the result still carries all the output.
    public func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler?) async throws -> RunResult {
        try await run(request, timeout: timeout)
    }
}
