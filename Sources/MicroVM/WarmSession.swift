import AgentProtocol

/// A parked VM as its job sees it. The job waited only for the hand-off, not for the boot that
/// happened before it arrived, so that is its boot time: what `boot_ms` and the boot histogram
/// report is the wait a job had, whichever way its VM came.
struct WarmSession: GuestSession {
    let parked: any GuestSession
    let bootDuration: Duration

    var hello: AgentHello { parked.hello }
    var isAlive: Bool { parked.isAlive }

    func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
        try await parked.run(request, timeout: timeout)
    }

    func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler?) async throws -> RunResult {
        try await parked.run(request, timeout: timeout, output: output)
    }
}
