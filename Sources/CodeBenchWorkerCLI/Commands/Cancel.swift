import ArgumentParser
import Foundation
import JobQueue
import Logging

/// `codebench-worker cancel <id>`: what a platform does to cancel a job (docs/wire-contract.md, "Cancelling a job").
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a job by id: a queued job never runs, a running one has its VM destroyed.",
        discussion: """
            Sets the job's cancel mark (<namespace>:cancel:<id>, with a TTL) and publishes the id on \
            <namespace>:cancel. The job ends with `failed` + `cancelled`, unless it finished first. \
            Cancelling an unknown or finished id is harmless.
            """)

    @Option(help: "Redis URL (also CODEBENCH_REDIS_URL).") var redisUrl: String?
    @Option(help: "Prefix of the queue's keys, as configured on the workers.") var namespace = "jobs"
    @Option(help: "How long the cancel mark waits for a job that is not claimed yet, in seconds.") var ttlSeconds = 86_400
    @Argument(help: "The id of the job to cancel.") var id: String

    func validate() throws {
        if id.isEmpty { throw ValidationError("the job id must not be empty") }
        if ttlSeconds < 1 { throw ValidationError("--ttl-seconds must be at least 1") }
    }

    func run() async throws {
        let url = redisUrl ?? ProcessInfo.processInfo.environment["CODEBENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
        let queue = try JobQueue(
            redisURL: url, clientName: "codebench-worker:cancel",
            configuration: QueueConfiguration(namespace: namespace, workerID: "cancel"), logger: Logger(label: "codebench.cancel"))
        defer { queue.close() }
        let heard = try await queue.requestCancel(id: id, ttl: .seconds(ttlSeconds))
        print("cancel of job \(id) requested; \(heard) worker(s) listening")
    }
}
