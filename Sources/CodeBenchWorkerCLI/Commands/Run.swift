import ArgumentParser
import Foundation
import JobQueue
import Logging
import Observability
import ServiceLifecycle
import Worker

/// `codebench-worker run`: flags -> configuration -> the worker service, until SIGTERM/SIGINT.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the worker: take jobs from Redis and run each in a fresh microVM.",
        discussion: """
            Every setting can be given as a flag (--name or --set name=value), as an environment variable \
            (CODEBENCH_NAME, e.g. CODEBENCH_REDIS_URL) or in a JSON config file (--config, CODEBENCH_CONFIG), \
            in that order of precedence. Settings:

            """ + WorkerSetting.all.map { "  \($0.name): \($0.help)" }.joined(separator: "\n")
    )

    @Option(help: "JSON object of settings (also CODEBENCH_CONFIG).") var config: String?
    @Option(help: "Redis URL (redis://, rediss://, unix://).") var redisUrl: String?
    @Option(help: "qemu, firecracker or auto.") var vmm: String?
    @Option(help: "VMs at once (default from cores and memory).") var concurrency: Int?
    @Option(help: "Directory with vmlinux and rootfs.ext4.") var imageDir: String?
    @Option(help: "Prefix of each job's status list (e.g. worker_job_status_).") var statusKeyPrefix: String?
    @Option(help: "This worker's id in Redis.") var workerId: String?
    @Option(help: "Seconds running jobs get to finish on SIGTERM before they are requeued.") var drainGraceSeconds: Double?
    @Flag(help: "Let jobs that ask for it have a network device.") var allowNetwork = false
    @Option(name: .customLong("set"), help: "Any setting, as name=value (repeatable).") var settings: [String] = []
    @Option(help: "trace, debug, info, notice, warning, error.") var logLevel = "info"

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        let logger = Logger(label: "codebench.worker")
        var configuration = try WorkerConfigurationLoader(
            flags: try flags(), environment: ProcessInfo.processInfo.environment, configFile: config
        ).load()
        try configuration.validate()
        // Resolved once, so the dashboard names the same worker the queue registers.
        let workerID = configuration.resolvedWorkerID()
        configuration.workerID = workerID
        // Its own connection: a dashboard reading the fleet never waits behind the worker's claims and statuses.
        let fleetQueue = try? JobQueue(
            redisURL: configuration.redisURL, clientName: "codebench-worker-dashboard:\(workerID)", reconnectAttempts: 1,
            commandTimeout: .seconds(3), configuration: configuration.queueConfiguration(workerID: workerID), logger: logger)
        defer { fleetQueue?.close() }
        var fleet: (@Sendable () async throws -> String)?
        if let fleetQueue {
            // No SCAN for unregistered lists: the dashboard asks every few seconds.
            fleet = { try await fleetQueue.fleetStatus(deadLetters: 10, scanUnregistered: false).json(observer: workerID) }
        }
        let registry = PrometheusBackend.bootstrap(timerBuckets: WorkerMetricNames.timerBuckets)
        let health = WorkerHealth()
        // Before the assembly, whose VMM probe can take seconds: a taken port fails at once, and
        // /healthz answers (with /readyz "starting") while the probe runs.
        var statusServer: StatusServer?
        if case .listen(let host, let port) = configuration.statusAddress {
            do {
                statusServer = try await StatusServer.start(
                    configuration: StatusServerConfiguration(host: host, port: port), registry: registry,
                    readiness: { Readiness(notReadyReason: health.notReadyReason, warning: health.warning) },
                    fleet: fleet, logger: logger)
            } catch {
                throw WorkerConfigurationError(
                    .hostNotReady, "status-address '\(configuration.statusAddress)' cannot be listened on: \(error)")
            }
        }
        let assembly: WorkerAssembly
        do {
            assembly = try await WorkerAssembly(configuration: configuration, health: health, logger: logger)
        } catch {
            statusServer?.close()
            throw error
        }
        defer { assembly.close() }
        // First in the group, so it shuts down last: /readyz says "draining" while jobs finish.
        let services: [any Service] = (statusServer.map { [$0] } ?? []) + [assembly.service]
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        // After the drain grace, the service itself cancels its VMs and requeues; this is only a backstop.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.drainGracePeriod + .seconds(30)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }

    private func flags() throws -> [String: String] {
        var flags = try SettingAssignments.parse(settings)
        flags["redis-url"] = redisUrl ?? flags["redis-url"]
        flags["vmm"] = vmm ?? flags["vmm"]
        flags["concurrency"] = concurrency.map(String.init) ?? flags["concurrency"]
        flags["image-dir"] = imageDir ?? flags["image-dir"]
        flags["status-key-prefix"] = statusKeyPrefix ?? flags["status-key-prefix"]
        flags["worker-id"] = workerId ?? flags["worker-id"]
        flags["drain-grace-seconds"] = drainGraceSeconds.map { String($0) } ?? flags["drain-grace-seconds"]
        if allowNetwork { flags["allow-network"] = "true" }
        return flags
    }
}
