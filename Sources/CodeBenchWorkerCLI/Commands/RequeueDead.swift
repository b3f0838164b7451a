import ArgumentParser
import Foundation
import JobQueue
import Logging

/// `codebench-worker requeue-dead`: dead-lettered jobs back onto the intake, reset as docs/reliability.md says.
struct RequeueDead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue-dead",
        abstract: "Put dead-lettered jobs back on the intake (one id, or all), atomically.",
        discussion: """
            Each job leaves the dead-letter list and is pushed at the tail of the intake; its terminal marker, its \
            status list (ending with `failed` + `abandoned after N attempts`) and its delivery counter are reset, so \
            it runs as a fresh submission (docs/reliability.md, "Requeueing dead-lettered jobs"). An id that no \
            dead-lettered job has is an error (exit code 1).
            """
    )

    @OptionGroup var queue: QueueOptions
    @Option(help: "Requeue the dead-lettered job(s) with this id.") var id: String?
    @Flag(help: "Requeue every dead-lettered job.") var all = false
    @Option(help: "trace, debug, info, notice, warning, error.") var logLevel = "warning"

    func validate() throws {
        guard (id != nil) != all else { throw ValidationError("give exactly one of --id ID or --all") }
    }

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        let jobs = try queue.queue(command: "requeue-dead", logger: Logger(label: "codebench.requeue-dead"))
        defer { jobs.close() }
        let moved: [RequeuedDeadLetter]
        do {
            moved = try await jobs.requeueDeadLetters(id.map(DeadLetterSelection.id) ?? .all)
        } catch let error as JobQueueError where error.code == .notDeadLettered {
            FileHandle.standardError.write(Data("requeue-dead: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        if moved.isEmpty { print("no dead-lettered jobs") }
        for job in moved {
            print("requeued \(job.id.map(FleetStatusText.safe) ?? "(no readable id)") onto \(job.intake)")
        }
    }
}
