import Foundation
import JobQueue
import Logging
import Metrics
import MicroVM
import QEMUDriver
import RedisClient
import ServiceLifecycle
import TestSupport
import Testing
import Worker

/// A real redis-server, a real worker service (QEMU under TCG, counted), and a platform's view of
/// both: push with `redis-cli` exactly as the seed did, read status lists with BLPOP.
final class WorkerHarness: Sendable {
    let redis: RedisServer
    let client: RedisClient
    let driver: CountingDriver
    let configuration: WorkerConfiguration
    let service: WorkerService
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    static let logger: Logger = {
        var logger = Logger(label: "worker-test")
        logger.logLevel = ProcessInfo.processInfo.environment["WORKER_TEST_LOG"] == nil ? .warning : .debug
        return logger
    }()

    private init(
        redis: RedisServer, client: RedisClient, driver: CountingDriver, configuration: WorkerConfiguration,
        service: WorkerService, group: ServiceGroup, running: Task<Void, any Error>
    ) {
        self.redis = redis
        self.client = client
        self.driver = driver
        self.configuration = configuration
        self.service = service
        self.group = group
        self.running = running
    }

    /// Starts redis and the worker; `configure` adjusts the configuration (redis URL and image are set).
    /// `services` run in the same group, before the worker (so they stop after it).
    static func start(
        redisOptions: RedisServerOptions = RedisServerOptions(), configure: (inout WorkerConfiguration) -> Void = { _ in },
        health: WorkerHealth = WorkerHealth(), metricsFactory: any MetricsFactory = MetricsSystem.factory,
        services: [any Service] = []
    ) async throws -> WorkerHarness {
        let image = try GuestImageFixture.require()
        let redis = try await RedisServer.start(redisOptions)
        var configuration = WorkerConfiguration()
        configuration.redisURL = redis.url
        configuration.imageDirectory = (image.kernelPath as NSString).deletingLastPathComponent
        configuration.vmm = .qemu
        configuration.concurrency = 1
        configuration.heartbeatTTL = .seconds(3)
        configure(&configuration)
        let driver = CountingDriver(QEMUDriver(configuration: DriverSelection.qemuConfiguration(.tcg, configuration)))
        do {
            let assembly = try await WorkerAssembly(
                configuration: configuration, driver: driver, health: health, metricsFactory: metricsFactory, logger: logger)
            let group = ServiceGroup(configuration: .init(services: services + [assembly.service], logger: logger))
            let running = Task { try await group.run() }
            let client = RedisClient(configuration: try .init(url: redis.url), logger: logger)
            return WorkerHarness(
                redis: redis, client: client, driver: driver, configuration: configuration, service: assembly.service,
                group: group, running: running)
        } catch {
            await redis.stop()
            throw error
        }
    }

    /// Graceful shutdown (as on SIGTERM) and waits for the service to return; redis keeps running.
    /// Returns the service's error, if it threw.
    @discardableResult
    func stopWorker() async -> (any Error)? {
        await group.triggerGracefulShutdown()
        if case .failure(let error) = await running.result { return error }
        return nil
    }

    /// Stops the worker (if still running) and redis.
    func stop() async {
        await stopWorker()
        client.close()
        await redis.stop()
    }

    /// Runs `body` with a started harness and always stops it.
    static func with<T>(
        redisOptions: RedisServerOptions = RedisServerOptions(), configure: (inout WorkerConfiguration) -> Void = { _ in },
        health: WorkerHealth = WorkerHealth(), metricsFactory: any MetricsFactory = MetricsSystem.factory,
        services: [any Service] = [], _ body: (WorkerHarness) async throws -> T
    ) async throws -> T {
        let harness = try await start(
            redisOptions: redisOptions, configure: configure, health: health, metricsFactory: metricsFactory, services: services)
        do {
            let value = try await body(harness)
            await harness.stop()
            return value
        } catch {
            await harness.stop()
            throw error
        }
    }

    /// `redis-cli -p PORT RPUSH <list> <payload>`: the platform's own client, not ours.
    func redisCLI(_ arguments: String...) throws -> String {
        try redisCLI(arguments)
    }

    func redisCLI(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-h", redis.host, "-p", String(redis.port)] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// Pushes a job payload as the seed did.
    func push(_ payload: String, list: String = "jobs") throws {
        let reply = try redisCLI("RPUSH", list, payload)
        #expect(Int(reply.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "RPUSH replied \(reply)")
    }

    /// Pops elements of `list` with BLPOP, as a platform reads it, until a terminal status and its
    /// trailing elements have arrived (or `timeout` passes between two elements).
    func readStatuses(_ list: String, timeout: Int = 60) async throws -> [String] {
        var elements: [String] = []
        var remaining = -1
        while remaining != 0 {
            let reply = try await client.send(RedisCommand("BLPOP", list, timeout), as: [String]?.self)
            guard let pair = reply, pair.count == 2 else {
                Issue.record("no element on \(list) within \(timeout) s; got so far: \(elements)")
                return elements
            }
            elements.append(pair[1])
            if remaining > 0 {
                remaining -= 1
            } else if pair[1] == "done" {
                remaining = 3
            } else if pair[1] == "failed" {
                remaining = 2
            }
        }
        return elements
    }

    /// The trailing result JSON of a terminal push.
    static func result(_ elements: [String]) -> [String: Any] {
        guard let last = elements.last,
            let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        else { return [:] }
        return object
    }
}
