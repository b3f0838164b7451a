import AgentProtocol
import MicroVM

/// The agent of one Firecracker VM, reached over vsock.
struct FirecrackerGuestSession: GuestSession {
    let hello: AgentHello
    let bootDuration: Duration
    let agent: AgentConnection

    var isAlive: Bool { agent.isOpen }

    func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
        try await agent.run(request, timeout: timeout)
    }

    func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler?) async throws -> RunResult {
        try await agent.run(request, timeout: timeout, output: output)
    }
}
