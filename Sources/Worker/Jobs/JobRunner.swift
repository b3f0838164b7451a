import AgentProtocol
import JobQueue
import Logging
import MicroVM

/// Takes one claimed job through its lifecycle: parse check, admission (``JobAdmission``), `received`,
/// a fresh VM, `running`, the run, and exactly one terminal status. Never throws: every failure becomes
/// a `failed` status (or, when the worker is draining, a requeue).
struct JobRunner: Sendable {
    let configuration: WorkerConfiguration
    let driver: any MicroVMDriver
    let outbox: Outbox
    let metrics: WorkerMetrics
    let logger: Logger
    /// Where a cancel request heard on the channel finds the job (``CancelWatcher``).
    var running = RunningJobs()
    /// Reads a job's durable cancel mark once it is registered in ``running``; nil: no cancellation.
    var cancelMark: (@Sendable (String) async throws -> Bool)?
    /// Where a job with `"stream": true` publishes its output while it runs; nil: nowhere (its output
    /// comes with the terminal status only, as for every job).
    var outputBackend: (any JobQueueBackend)? = nil
    var outputConfiguration = OutputPublisher.Configuration()

    /// Runs `claimed` to its end.
    func run(_ claimed: ClaimedJob) async {
        var logger = self.logger
        let job: JobRequest
        switch claimed.job {
        case .failure(let invalid):
            logger[metadataKey: "job.id"] = "\(invalid.id ?? "-")"
            logger.notice("invalid job", metadata: ["reason": "\(invalid.reason)"])
            metrics.finished(.invalid)
            await outbox.submit(.reject(claimed, invalid), logger: logger)
            return
        case .success(let parsed):
            job = parsed
        }
        logger[metadataKey: "job.id"] = "\(job.id)"
        let cancellation = running.register(job.id)
        defer { running.unregister(job.id, cancellation) }
        if await isCancelled(job.id, cancellation, logger) {
            // Cancelled while queued: never booted, no `received`, only the terminal status (docs/wire-contract.md).
            await finishCancelled(claimed, JobResultRecord(), logger)
            return
        }
        let limits = configuration.effectiveLimits(for: job)
        let request: RunRequest
        switch JobAdmission.request(for: job, limits: limits, configuration: configuration) {
        case .failure(let refusal):
            // Like a payload the parser refused: no `received`, no VM, the reason on the job's list.
            logger.notice("invalid job", metadata: ["reason": "\(refusal.reason)"])
            metrics.finished(.invalid)
            let outcome = JobOutcome.failed(reason: refusal.reason, result: JobResultRecord(message: refusal.reason))
            await outbox.submit(.finish(claimed, outcome), logger: logger)
            return
        case .success(let admitted):
            request = admitted
        }
        logger.info("job received", metadata: ["deliveries": "\(claimed.deliveries)"])
        await outbox.submit(.status(.received, claimed), logger: logger)

        if job.network && !configuration.allowNetwork {
            await finish(claimed, .failed(reason: "network access is not allowed on this worker", result: nil), logger)
            return
        }
        if cancellation.isRequested {
            await finishCancelled(claimed, JobResultRecord(), logger)
            return
        }
        let hostTimeout = configuration.hostTimeout(for: request)
        let queued = ContinuousClock.now - claimed.claimedAt
        let queueMilliseconds = Int(queued.milliseconds)
        metrics.queued(queued)

        let publisher = job.stream
            ? outputBackend.map { OutputPublisher(id: job.id, backend: $0, configuration: outputConfiguration, logger: logger) }
            : nil
        let outcome: JobOutcome
        // What the VM cost the host, known once withVM has torn it down (VMUsage); every path below
        // waits for that, a cancelled or requeued job's too.
        let usage = VMUsageRecorder()
        defer { metrics.used(usage.usage) }
        do {
            let (driver, metrics, configuration, outbox, logger) = (self.driver, self.metrics, self.configuration, self.outbox, logger)
            // Its own task, so a cancel request stops this job's VM alone; the drain's cancellation reaches it too.
            let work = Task {
                try await metrics.countingVM {
                    try await driver.withVM(configuration.vmConfiguration(network: job.network), logger: logger, usage: usage.record) { session in
                        if let problem = session.hello.problem(running: request) { throw AgentTooOld(reason: problem) }
                        let request = Self.streaming(request, session.hello, publisher)
                        await outbox.submit(.status(.running, claimed), logger: logger)
                        let result = try await session.run(
                            request, timeout: hostTimeout, output: request.streamOutput ? publisher?.handler : nil)
                        return (result, session.bootDuration)
                    }
                }
            }
            cancellation.onRequest { work.cancel() }
            let (result, boot) = try await withTaskCancellationHandler {
                try await work.value
            } onCancel: {
                work.cancel()
            }
            cancellation.clearAction()
            metrics.booted(in: boot)
            outcome = OutcomePolicy.outcome(
                for: result, limits: limits, vmm: driver.name, bootMilliseconds: Int(boot.milliseconds),
                queueMilliseconds: queueMilliseconds)
        } catch {
            if cancellation.isRequested {
                // The VM is gone (withVM tears it down when its task is cancelled): one terminal `cancelled`.
                logger.notice("job cancelled while running; VM destroyed")
                await publisher?.finish(.failed)
                let record = JobResultRecord(vmm: driver.name, queueMilliseconds: queueMilliseconds)
                await finishCancelled(claimed, record, logger)
                return
            }
            if Task.isCancelled {
                // Drain past the grace period: the VM is gone, the job goes back for another worker.
                logger.notice("job interrupted by shutdown, requeueing")
                publisher?.abandon()
                metrics.finished(.requeued)
                await outbox.submit(.requeue(claimed), logger: logger)
                return
            }
            if let tooOld = error as? AgentTooOld {
                // Not the job's fault, nor the VM's: the image is older than the worker. Nothing ran.
                logger.error("guest agent too old for this job", metadata: ["reason": "\(tooOld.reason)"])
                let record = JobResultRecord(message: tooOld.reason, vmm: driver.name, queueMilliseconds: queueMilliseconds)
                await publisher?.finish(.failed)
                await finish(claimed, .failed(reason: tooOld.reason, result: record), logger)
                return
            }
            let console = (error as? VMError)?.consoleTail?.suffix(2000) ?? ""
            logger.warning("VM failed", metadata: ["error": "\(error)", "console": "\(console)"])
            outcome = OutcomePolicy.outcome(for: error, limits: limits, vmm: driver.name, queueMilliseconds: queueMilliseconds)
        }
        let reported = outcome.reporting(limits).costing(usage.usage)
        if let publisher {
            if case .done = reported { await publisher.finish(.done) } else { await publisher.finish(.failed) }
        }
        await finish(claimed, reported, logger)
    }

    /// `request` asking the agent to stream when the job wants its output streamed and can have it: not
    /// in judge mode (a case's output is judged, not watched; the result has each case's), not from an
    /// agent older than revision 3. Otherwise a `notice` entry says why the stream holds only its `end`.
    static func streaming(_ request: RunRequest, _ hello: AgentHello, _ publisher: OutputPublisher?) -> RunRequest {
        guard let publisher else { return request }
        if request.judge != nil {
            publisher.note("judge mode does not stream output: each case's output is in the final status")
            return request
        }
        guard hello.streamsOutput else {
            publisher.note(
                "the guest agent speaks protocol revision \(hello.announcedRevision) and cannot stream output "
                    + "(revision \(outputStreamingRevision) can): it comes with the final status")
            return request
        }
        var streamed = request
        streamed.streamOutput = true
        return streamed
    }

    /// Whether the job is cancelled: already heard on the channel, or its durable mark exists. A mark that cannot
    /// be read (Redis away) does not stop the job; the watcher reads it again when its channel resubscribes.
    private func isCancelled(_ id: String, _ cancellation: JobCancellation, _ logger: Logger) async -> Bool {
        if cancellation.isRequested { return true }
        guard let cancelMark else { return false }
        do {
            if try await cancelMark(id) { cancellation.request() }
        } catch {
            logger.warning("could not read the job's cancel mark; running it", metadata: ["error": "\(error)"])
        }
        return cancellation.isRequested
    }

    private func finishCancelled(_ claimed: ClaimedJob, _ record: JobResultRecord, _ logger: Logger) async {
        logger.info("job cancelled")
        metrics.finished(.cancelled)
        await outbox.submit(.finish(claimed, .cancelled(record)), logger: logger)
    }

    private func finish(_ claimed: ClaimedJob, _ outcome: JobOutcome, _ logger: Logger) async {
        switch outcome {
        case .done(_, _, let record):
            logger.info(
                "job done",
                metadata: ["verdict": "\(record.verdict ?? "-")", "exit_code": "\(record.exitCode.map(String.init) ?? "-")"])
            metrics.finished(.done)
        case .failed(let reason, _):
            logger.info("job failed", metadata: ["reason": "\(reason)"])
            metrics.finished(.failed)
        }
        await outbox.submit(.finish(claimed, outcome), logger: logger)
    }
}

/// The booted VM's agent announced a revision older than the request needs (``AgentHello/problem(running:)``).
struct AgentTooOld: Error {
    var reason: String
}
