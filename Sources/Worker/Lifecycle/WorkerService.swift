import JobQueue
import Logging
import Metrics
import MicroVM
import ServiceLifecycle

/// The worker daemon: claims jobs from Redis only when a VM slot is free, runs each in a fresh
/// microVM, publishes its statuses, and keeps the queue healthy (heartbeat, reaper, outbox).
///
/// On graceful shutdown (SIGTERM/SIGINT through a `ServiceGroup`) it stops claiming, lets running
/// jobs finish within ``WorkerConfiguration/drainGracePeriod``, then destroys the remaining VMs and
/// requeues their jobs, publishes what is left in the outbox, and returns.
public struct WorkerService: Service, CustomStringConvertible {
    public let configuration: WorkerConfiguration
    public let workerID: String
    private let queue: any JobQueueBackend
    private let driver: any MicroVMDriver
    private let logger: Logger
    private let metrics: WorkerMetrics
    /// Readiness for a status endpoint; this service moves it along.
    public let health: WorkerHealth
    /// VMs booted ahead of jobs, when ``WorkerConfiguration/warmVMs`` is above 0.
    private let pool: WarmVMPool?

    /// - Parameters:
    ///   - queue: the job queue: ``JobQueue`` on Redis, configured with
    ///     ``WorkerConfiguration/queueConfiguration(workerID:)`` for `workerID` (``WorkerAssembly`` builds it),
    ///     or any other ``JobQueueBackend``.
    ///   - driver: boots the VMs (see ``DriverSelection`` for the production choice).
    ///   - health: updated as the service starts, loses or regains Redis, and drains.
    ///   - metricsFactory: where the metrics go; the process-wide `MetricsSystem.factory` by default.
    public init(
        configuration: WorkerConfiguration, workerID: String, queue: any JobQueueBackend, driver: any MicroVMDriver,
        health: WorkerHealth = WorkerHealth(), metricsFactory: any MetricsFactory = MetricsSystem.factory, logger: Logger
    ) {
        self.configuration = configuration
        self.health = health
        self.metrics = WorkerMetrics(factory: metricsFactory)
        self.workerID = workerID
        self.queue = queue
        self.driver = driver
        var logger = logger
        logger[metadataKey: "worker.id"] = "\(workerID)"
        self.logger = logger
        let metrics = self.metrics
        self.pool = configuration.warmVMs > 0
            ? WarmVMPool(
                base: driver, configuration: configuration.vmConfiguration(network: false), size: configuration.warmVMs, logger: logger,
                observer: { metrics.warmPool($0) })
            : nil
    }

    public var description: String { "WorkerService(\(workerID))" }

    /// VMs this service has running right now.
    public var runningVMs: Int { metrics.runningVMs }

    /// Jobs that started on a VM booted ahead of them (see ``WorkerConfiguration/warmVMs``).
    public var warmStarts: Int { pool?.handedOut ?? 0 }
    /// VMs parked and waiting for a job right now.
    public var warmIdle: Int { pool?.idleCount ?? 0 }

    public func run() async throws {
        try configuration.validate()
        let concurrency = configuration.effectiveConcurrency
        let slots = SlotPool(slots: concurrency)
        let outbox = Outbox(queue: queue, capacity: configuration.outboxCapacity, logger: logger)
        let queue = self.queue
        let running = RunningJobs()
        let runner = JobRunner(
            configuration: configuration, driver: pool ?? driver, outbox: outbox, metrics: metrics, logger: logger, running: running,
            cancelMark: { id in try await queue.cancelRequested(among: [id]).contains(id) }, outputBackend: queue)
        logger.notice(
            "worker started",
            metadata: [
                "concurrency": "\(concurrency)", "warm_vms": "\(configuration.warmVMs)", "qemu_standby": "\(configuration.qemuStandby)",
                "vmm": "\(driver.name)",
                "intake": "\(configuration.intakeLists.joined(separator: ","))",
                // What QEMU's snapshot restores do, as the driver reads the setting (jailed or not).
                "qemu_restore": "\(DriverSelection.qemuConfiguration(.tcg, configuration).effectiveRestoreMode.rawValue)",
                "status_key_prefix": "\(configuration.statusKeyPrefix)",
            ])

        await withTaskGroup(of: Void.self) { background in
            background.addTask { await outbox.run() }
            background.addTask { await queue.runMaintenance() }
            background.addTask { await CancelWatcher(queue: queue, running: running, logger: logger).run() }
            background.addTask { await LeftoverVMSweeper(configuration: configuration, logger: logger).run() }
            if let standby = driver as? any VMMStandbyDriver {
                // Cancelled with the rest; destroys the QEMUs still waiting for a VM.
                background.addTask { await standby.runStandby() }
            }
            if let pool {
                // Cancelled with the other background work once every job has ended; destroys the parked VMs.
                background.addTask { await pool.run() }
            }
            await runJobs(slots: slots, runner: runner, outbox: outbox)
            background.cancelAll()
        }
        await leave(outbox: outbox)
    }

    /// Publishes what the outbox still holds, then leaves the fleet. Only with an empty outbox: leaving
    /// gives the processing list back to the intake, and a job whose result is still unpublished would
    /// run twice. Without Redis, the reaper of another worker recovers what is left after our heartbeat expires.
    private func leave(outbox: Outbox) async {
        guard await outbox.flush(before: .now + .seconds(5)) else {
            logger.error("worker stopped with unpublished results; they will be recovered by another worker's reaper")
            return
        }
        do {
            let returned = try await Task { try await queue.shutdown() }.value
            logger.notice("worker stopped", metadata: ["jobs_returned": "\(returned)"])
        } catch {
            logger.warning("worker stopped without deregistering", metadata: ["error": "\(error)"])
        }
    }

    /// The claim loop and the jobs it starts; returns when every job has finished or been requeued.
    private func runJobs(slots: SlotPool, runner: JobRunner, outbox: Outbox) async {
        let stop = StopFlag()
        let inFlight = InFlightJobs()
        await withTaskCancellationOrGracefulShutdownHandler {
            await withDiscardingTaskGroup { jobs in
                var claimer = Claimer(queue: queue, health: health, metrics: metrics, logger: logger)
                while !stop.isSet {
                    guard await slots.acquire() else { break }
                    let next = stop.isSet ? nil : await claimer.next(stop: stop)
                    // Held before recovery runs, so the job just claimed is never taken for an orphan.
                    if let next { inFlight.insert(next.payload) }
                    if claimer.recoveredFromOutage, await outbox.count == 0 {
                        claimer.recoveredFromOutage = false
                        // Claims whose reply was lost (BLMOVE done, answer gone with the connection) sit in
                        // our processing list with nobody running them.
                        _ = try? await queue.requeueOrphans(holding: inFlight.all)
                    }
                    guard let claimed = next else {
                        await slots.release()
                        continue
                    }
                    if stop.isSet {
                        // Claimed while shutdown began: give it straight back rather than start a VM.
                        await outbox.submit(.requeue(claimed), logger: logger)
                        inFlight.remove(claimed.payload)
                        await slots.release()
                        break
                    }
                    jobs.addTask {
                        await runner.run(claimed)
                        inFlight.remove(claimed.payload)
                        await slots.release()
                    }
                }
                await drain(slots: slots, jobs: &jobs)
            }
        } onCancelOrGracefulShutdown: {
            health.startDraining()
            stop.set()
            Task { await slots.close() }
        }
    }

    /// Waits for running jobs up to the grace period, then cancels the rest (their runners requeue them).
    private func drain(slots: SlotPool, jobs: inout DiscardingTaskGroup) async {
        let running = await slots.inUse
        guard running > 0 else { return }
        logger.notice(
            "draining", metadata: ["running": "\(running)", "grace_seconds": "\(configuration.drainGracePeriod.milliseconds / 1000)"])
        let deadline = ContinuousClock.now + configuration.drainGracePeriod
        _ = await slots.waitUntilIdle(before: deadline)
        let left = await slots.inUse
        if left > 0 {
            logger.notice("grace period over, stopping the remaining VMs and requeueing their jobs", metadata: ["jobs": "\(left)"])
            jobs.cancelAll()
        }
    }
}
