import ArgumentParser
import JobQueue
import Logging

/// `codebench-worker status`: the fleet at a glance, from Redis (queue depths, workers, dead letters).
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show queue depths, every registered worker with its running jobs, and the newest dead-lettered jobs.",
        discussion: """
            Reads Redis only. --json prints one JSON object (its shape is in docs/fleet.md), the same document a \
            worker's status server serves at /fleet.json.
            """
    )

    @OptionGroup var queue: QueueOptions
    @Flag(help: "Print JSON for scripts (docs/fleet.md).") var json = false
    @Option(help: "How many of the newest dead-lettered jobs to list.") var deadLetters = 10
    @Option(help: "trace, debug, info, notice, warning, error.") var logLevel = "warning"

    func validate() throws {
        guard deadLetters >= 0 else { throw ValidationError("--dead-letters must be 0 or more") }
    }

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        let jobs = try queue.queue(command: "status", logger: Logger(label: "codebench.status"))
        defer { jobs.close() }
        let status = try await jobs.fleetStatus(deadLetters: deadLetters)
        print(json ? status.json() : FleetStatusText.render(status))
    }
}
