import AgentProtocol
import Logging
import MicroVM

/// The session handed to a ``QEMUDriver/withVM(_:logger:_:)`` body.
struct QEMUSession: GuestSession {
    let hello: AgentHello
    let bootDuration: Duration
    let connection: AgentConnection
    let resources: VMResources
    let logger: Logger

    var isAlive: Bool { connection.isOpen }

    func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
        try await run(request, timeout: timeout, output: nil)
    }

    func run(_ request: RunRequest, timeout: Duration, output: OutputChunkHandler?) async throws -> RunResult {
        do {
            return try await connection.run(request, timeout: timeout, output: output)
        } catch var error as VMError {
            // If QEMU is gone the channel error is only a symptom: say the VM crashed, with its console.
            if error.code != .hostTimeout, let status = await resources.vmmExitStatus() {
                let message = resources.vmmMessage
                let cause = resources.cgroup?.oomReason.map { "out of memory: " + $0 + "; " } ?? ""
                error = VMError(
                    .vmCrashed,
                    "\(cause)the VM stopped (QEMU \(status)) while running \(request.id)\(message.isEmpty ? "" : "; QEMU said: \(message)") [\(error.message)]",
                    consoleTail: resources.consoleTail)
            } else {
                error.consoleTail = error.consoleTail ?? resources.consoleTail
            }
            logger.debug("run failed", metadata: ["request": "\(request.id)", "error": "\(error)"])
            throw error
        }
    }
}
