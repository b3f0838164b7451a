import Foundation
import JobQueue
import Languages
import Logging
import Metrics
import MicroVM

/// Builds a ready-to-run ``WorkerService`` from a configuration: the Redis client, the queue and the
/// VMM driver. The CLI and the benchmarks use it; tests inject their own driver.
public struct WorkerAssembly: Sendable {
    public let service: WorkerService
    /// The service's queue; ``close()`` closes its Redis connections.
    public let queue: JobQueue

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
        var configuration = configuration
        configuration.languages = try Self.imageLanguages(configuration.imageDirectory)
        let workerID = configuration.resolvedWorkerID()
        let queue: JobQueue
        do {
            // Fail fast while Redis is down: the claimer and the outbox retry with their own backoff.
            queue = try JobQueue(
                redisURL: configuration.redisURL, clientName: "codebench-worker:\(workerID)", reconnectAttempts: 2,
                commandTimeout: .seconds(5), configuration: configuration.queueConfiguration(workerID: workerID), logger: logger)
        } catch {
            throw WorkerConfigurationError(.invalidValue, "redis-url '\(configuration.redisURL)': \(error.message)")
        }
        do {
            try await queue.publishLanguages(LanguageListing(configuration.languages).json)
        } catch {
            // Jobs still run; platforms only miss the list until the next start.
            logger.warning("could not publish the language list", metadata: ["error": "\(error)"])
        }
        let selected: any MicroVMDriver
        if let driver {
            selected = driver
        } else {
            selected = try await DriverSelection.makeDriver(for: configuration, logger: logger)
        }
        Self.warnIfQEMUUnjailed(configuration: configuration, driver: selected, health: health, logger: logger)
        // Published with every heartbeat, for `codebench-worker status` and the dashboard.
        await queue.describe(WorkerInfo(
            host: ProcessInfo.processInfo.hostName, vmm: selected.name, pid: Int(ProcessInfo.processInfo.processIdentifier),
            version: WorkerVersion.current, startedAtMilliseconds: Int(Date().timeIntervalSince1970 * 1000),
            concurrency: configuration.effectiveConcurrency))
        self.queue = queue
        self.service = WorkerService(
            configuration: configuration, workerID: workerID, queue: queue, driver: selected, health: health,
            metricsFactory: metricsFactory, logger: logger)
    }

    /// The registry the image build put next to rootfs.ext4; a malformed one stops the worker at start.
    public static func imageLanguages(_ directory: String) throws -> LanguageRegistry {
        do {
            return try LanguageRegistry.image(directory: directory)
        } catch {
            throw WorkerConfigurationError(.invalidValue, "\(directory)/\(LanguageRegistry.imageFileName): \(error)")
        }
    }

    /// With `qemu-jail=off` and QEMU chosen, says so at every start: in the log and in `/readyz`.
    static func warnIfQEMUUnjailed(configuration: WorkerConfiguration, driver: any MicroVMDriver, health: WorkerHealth, logger: Logger) {
        guard let warning = configuration.qemuJailWarning, let kind = VMMKind(rawValue: driver.name), kind != .firecracker else { return }
        health.warn(warning)
        logger.warning(
            "QEMU runs unjailed as root: a guest that escapes QEMU is root on this host (qemu-jail=off; docs/security.md)",
            metadata: ["vmm": "\(kind)"])
    }

    /// Closes the queue's Redis connections (after the service has returned).
    public func close() {
        queue.close()
    }
}
