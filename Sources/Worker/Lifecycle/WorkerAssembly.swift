import JobQueue
import Logging
import Metrics
import MicroVM
import RedisClient

/// Builds a ready-to-run ``WorkerService`` from a configuration: the Redis client, the queue and the
/// VMM driver. The CLI and the benchmarks use it; tests inject their own driver.
public struct WorkerAssembly: Sendable {
    public let service: WorkerService
    public let client: RedisClient

    /// - Parameters:
    ///   - driver: nil selects one with ``DriverSelection``.
    ///   - health: the service's readiness, for a status endpoint.
    ///   - metricsFactory: where the service's metrics go; the process-wide `MetricsSystem.factory` by default.
    public init(
        configuration: WorkerConfiguration, driver: (any MicroVMDriver)? = nil, health: WorkerHealth = WorkerHealth(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) async throws {
        try configuration.validate()
        try configuration.validateHost()
        let workerID = configuration.resolvedWorkerID()
        var redisConfiguration: RedisClientConfiguration
        do {
            redisConfiguration = try RedisClientConfiguration(url: configuration.redisURL)
        } catch {
            throw WorkerConfigurationError(.invalidValue, "redis-url '\(configuration.redisURL)': \(error)")
        }
        // Fail fast while Redis is down: the claimer and the outbox retry with their own backoff, and
        // a job's `running` must not wait seconds for a server that is not there.
        redisConfiguration.reconnect.maxAttempts = 2
        redisConfiguration.timeouts.command = .seconds(5)
        redisConfiguration.clientName = "codebench-worker:\(workerID)"
        let client = RedisClient(configuration: redisConfiguration, logger: logger)
        let queue = JobQueue(client: client, configuration: configuration.queueConfiguration(workerID: workerID), logger: logger)
        let selected: any MicroVMDriver
        if let driver {
            selected = driver
        } else {
            selected = try await DriverSelection.makeDriver(for: configuration, logger: logger)
        }
        self.client = client
        self.service = WorkerService(
            configuration: configuration, workerID: workerID, queue: queue, client: client, driver: selected, health: health,
            metricsFactory: metricsFactory, logger: logger)
    }
}
