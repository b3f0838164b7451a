import Foundation
import JobQueue
import Logging
import ServiceLifecycle

@testable import Worker

enum WorkerFixtures {
    static let logger: Logger = {
        var logger = Logger(label: "worker-logic-test")
        logger.logLevel = ProcessInfo.processInfo.environment["WORKER_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    /// A worker configuration for scripted VMs: nothing on this host is touched (its runtime directory does
    /// not exist, so the leftover-VM sweeper finds nothing), and shutdown waits `drainGrace`.
    static func configuration(concurrency: Int = 1, drainGrace: Duration = .seconds(5)) -> WorkerConfiguration {
        var configuration = WorkerConfiguration()
        configuration.concurrency = concurrency
        configuration.drainGracePeriod = drainGrace
        configuration.runtimeDirectory = "/nonexistent/codebench-worker-logic-tests"
        configuration.snapshots = false
        return configuration
    }

    /// A job runner over `queue` and `driver`, with the outbox it writes through.
    static func runner(
        _ configuration: WorkerConfiguration = configuration(), queue: InMemoryJobQueue, driver: ScriptedDriver
    ) -> (JobRunner, Outbox) {
        let outbox = Outbox(queue: queue, capacity: configuration.outboxCapacity, logger: logger)
        let runner = JobRunner(
            configuration: configuration, driver: driver, outbox: outbox, metrics: WorkerMetrics(), logger: logger, outputBackend: queue)
        return (runner, outbox)
    }

    /// Claims the job `payload` from a fresh in-memory queue, as the claim loop would.
    static func claim(_ payload: String, from queue: InMemoryJobQueue) async throws -> ClaimedJob {
        await queue.push(payload)
        guard let claimed = try await queue.claim(timeout: .milliseconds(100)) else {
            throw FixtureFailure("nothing to claim after pushing \(payload)")
        }
        return claimed
    }
}

struct FixtureFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A ``WorkerService`` running in a `ServiceGroup`, as `codebench-worker run` runs it; ``stop()`` is SIGTERM.
struct RunningWorker {
    let service: WorkerService
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(_ configuration: WorkerConfiguration, queue: InMemoryJobQueue, driver: ScriptedDriver) {
        service = WorkerService(
            configuration: configuration, workerID: "logic-test", queue: queue, driver: driver, logger: WorkerFixtures.logger)
        let group = ServiceGroup(configuration: .init(services: [service], logger: WorkerFixtures.logger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown; returns once the service has, with its error if it threw.
    @discardableResult
    func stop() async -> (any Error)? {
        await group.triggerGracefulShutdown()
        if case .failure(let error) = await task.result { return error }
        return nil
    }
}
