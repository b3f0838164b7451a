import AgentProtocol
import Foundation
import JobQueue
import Logging
import MicroVM
import QEMUDriver
import RedisClient
import TestSupport
import Worker

/// `codebench-worker bench worker`: what the worker adds on top of the VM driver.
///
/// In one run, against a throw-away redis-server: enqueue-to-done latency of `true` and a Python
/// one-liner through the worker, the same workloads through the driver alone, the worker's own
/// overhead per job (latency minus that job's VM lifetime), host CPU per job, throughput of a batch
/// with 1, 2, 4 and 8 concurrent VMs, through the worker and through the driver alone, and a judge job of N cases next
/// to N separate jobs of the same program.
public struct WorkerBenchmark: Sendable {
    /// The parts of the benchmark; `--only` picks some (each takes minutes under TCG).
    public enum Section: String, Sendable, CaseIterable {
        case latency, jail, restore, throughput, judge, languages
    }

    public struct Options: Sendable {
        /// Jobs per latency series (run one after another).
        public var latencyJobs = 20
        /// Jobs per throughput batch (pushed at once).
        public var batchJobs = 12
        public var concurrencies = [1, 2, 4, 8]
        /// Cases of the judge job, and separate jobs it is compared with.
        public var judgeCases = 20
        /// Hello-world jobs per language (the image's registry).
        public var languageJobs = 3
        public var sections = Set(Section.allCases)
        public var imageDirectory = GuestImage.defaultDirectory
        /// TCG by default: on hosts with a nested KVM that cannot run guests the probe would only add noise.
        public var qemuAccelerator: WorkerConfiguration.QEMUAcceleratorChoice = .tcg

        public init() {}
    }

    public let options: Options
    let logger: Logger
    let output: @Sendable (String) -> Void

    public init(options: Options, logger: Logger, output: @escaping @Sendable (String) -> Void) {
        self.options = options
        self.logger = logger
        self.output = output
    }

    static var workloads: [(name: String, payload: (String) -> String, workload: Workload)] {
        [
        ("true", { #"{"id":"\#($0)","command":"true"}"# }, .shell(command: "true")),
        ("python", { #"{"id":"\#($0)","language":"python","code":"print(6*7)"}"# }, .program(language: .python, source: "print(6*7)")),
        ]
    }

    public func run() async throws {
        _ = try GuestImageFixture.require(.at(options.imageDirectory))
        var base = WorkerConfiguration()
        base.imageDirectory = options.imageDirectory
        base.vmm = .qemu
        base.qemuAccelerator = options.qemuAccelerator
        let driver = WorkerBenchmarkTimingDriver(try await DriverSelection.makeDriver(for: base, logger: logger))
        output("worker benchmark: VMM \(driver.name), \(options.latencyJobs) jobs per latency series, batches of \(options.batchJobs)")
        try await withRedisServer { redis in
            base.redisURL = redis.url
            let client = RedisClient(configuration: try .init(url: redis.url), logger: logger)
            defer { client.close() }
            let platform = WorkerBenchmarkPlatform(client: client, redisPID: redis.pid)
            let sections = options.sections
            if sections.contains(.latency) { try await latency(base: base, driver: driver, platform: platform) }
            if sections.contains(.jail) { try await jailCost(base: base, jailed: driver, platform: platform) }
            if sections.contains(.restore) { try await restoreModes(base: base, platform: platform) }
            if sections.contains(.throughput) { try await throughput(base: base, driver: driver, platform: platform) }
            if sections.contains(.judge) { try await judge(base: base, driver: driver, platform: platform) }
            if sections.contains(.languages) { try await languages(base: base, driver: driver, platform: platform) }
        }
    }

    private func latency(base: WorkerConfiguration, driver: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform) async throws {
        output("\nlatency, one job at a time")
        var spawnEachTime = base
        spawnEachTime.qemuStandby = 0
        // The same driver without standby QEMUs, for the baseline series.
        let unreadyDriver = base.qemuStandby > 0 && base.vmm == .qemu ? try await DriverSelection.makeDriver(for: spawnEachTime, logger: logger) : nil
        for (name, payload, workload) in Self.workloads {
            var alone: [Duration] = []
            try await driver.withStandby {
                for i in 0..<options.latencyJobs {
                    let start = ContinuousClock.now
                    _ = try await driver.withVM(base.vmConfiguration(network: false), logger: logger) { session in
                        try await session.run(RunRequest(id: "alone-\(i)", workload: workload), timeout: .seconds(30))
                    }
                    alone.append(.now - start)
                }
            }
            _ = driver.takeSpans()
            var configuration = base
            configuration.concurrency = 1
            let cpuStart = CPUSplit.now(redisPID: platform.redisPID)
            let series = try await withWorker(configuration, driver: driver) { _ in
                try await oneAtATime(platform, ids: "lat-\(name)", payload: payload)
            }
            let latencies = series.latencies
            let cpuPerJob = CPUSplit.now(redisPID: platform.redisPID).perJob(since: cpuStart, jobs: latencies.count)
            let spans = driver.takeSpans()
            let overheads = zip(latencies, spans).map { $0 - $1 }
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) driver alone   \(WorkerBenchmarkSample(alone).summary)")
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) through worker \(WorkerBenchmarkSample(latencies).summary)")
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) worker overhead per job (latency - VM lifetime): \(WorkerBenchmarkSample(overheads).summary)")
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) host CPU per job: \(cpuPerJob)")
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) \(series.vmCPUSummary)")

            // The same jobs with every QEMU spawned when its job comes (qemu-standby 0): the baseline of standby QEMUs.
            if let unreadyDriver {
                var withoutStandby = configuration
                withoutStandby.qemuStandby = 0
                let unreadyCPUStart = HostCPU.now()
                let spawned = try await withWorker(withoutStandby, driver: unreadyDriver) { _ in
                    try await oneAtATime(platform, ids: "nostandby-\(name)", payload: payload).latencies
                }
                output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) worker, qemu-standby 0 \(WorkerBenchmarkSample(spawned).summary)")
                output(String(format: "  %@ host CPU per job, qemu-standby 0: %.0f ms", name.padding(toLength: 7, withPad: " ", startingAt: 0),
                    HostCPU.millisecondsPerJob(since: unreadyCPUStart, jobs: spawned.count)))
            }

            // The same jobs with one VM booted ahead of each (warm-vms 1), each pushed once a VM is parked.
            configuration.warmVMs = 1
            let warmCPUStart = HostCPU.now()
            let warmSeries = try await withWorker(configuration, driver: driver) { service in
                try await oneAtATime(platform, ids: "warm-\(name)", payload: payload) {
                    while service.warmIdle < 1 { try await Task.sleep(for: .milliseconds(5)) }
                }
            }
            let warm = warmSeries.latencies
            _ = driver.takeSpans()
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) worker, warm-vms 1 \(WorkerBenchmarkSample(warm).summary)")
            // Counts the VM still parked when the worker stops (booted for a job that never came).
            output(String(format: "  %@ host CPU per job, warm-vms 1: %.0f ms", name.padding(toLength: 7, withPad: " ", startingAt: 0),
                HostCPU.millisecondsPerJob(since: warmCPUStart, jobs: warm.count)))
            output("  \(name.padding(toLength: 7, withPad: " ", startingAt: 0)) warm-vms 1: \(warmSeries.vmCPUSummary)")
        }
    }

    /// `true` through the worker with QEMU jailed (the default) and with `qemu-jail=off`, in the same
    /// run: what the jail costs a job.
    private func jailCost(base: WorkerConfiguration, jailed: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform) async throws {
        guard base.qemuJail, jailed.name.hasPrefix("qemu") else { return }
        var unjailedConfiguration = base
        unjailedConfiguration.qemuJail = false
        let unjailed = WorkerBenchmarkTimingDriver(try await DriverSelection.makeDriver(for: unjailedConfiguration, logger: logger))
        output("\njail cost, `true` one job at a time through the worker")
        var configuration = base
        configuration.concurrency = 1
        let payload = Self.workloads[0].payload
        let withJail = try await withWorker(configuration, driver: jailed) { _ in try await oneAtATime(platform, ids: "jail-on", payload: payload).latencies }
        _ = jailed.takeSpans()
        let withoutJail = try await withWorker(configuration, driver: unjailed) { _ in try await oneAtATime(platform, ids: "jail-off", payload: payload).latencies }
        output("  qemu-jail on   \(WorkerBenchmarkSample(withJail).summary)")
        output("  qemu-jail off  \(WorkerBenchmarkSample(withoutJail).summary)")
        let cost = WorkerBenchmarkSample(withJail).percentile(50) - WorkerBenchmarkSample(withoutJail).percentile(50)
        output(String(format: "  the jail's cost per job, p50 on - off: %+.1f ms", cost))
    }

    /// Enqueue-to-terminal latency of `options.latencyJobs` jobs, pushed one after another, each once
    /// `ready` returns (untimed).
    func oneAtATime(
        _ platform: WorkerBenchmarkPlatform, ids prefix: String, payload: (String) -> String,
        ready: () async throws -> Void = {}
    ) async throws -> JobSeries {
        var series = JobSeries()
        for i in 0..<options.latencyJobs {
            try await ready()
            let id = "\(prefix)-\(i)"
            let start = ContinuousClock.now
            try await platform.push(payload(id))
            let terminal = try await platform.done(id)
            series.latencies.append(.now - start)
            // What followed `done`: stdout, stderr, the result JSON.
            if let json = terminal.dropFirst(2).first, let ms = JobResultRecord(json: json)?.hostCPUMilliseconds {
                series.vmCPU.append(.milliseconds(ms))
            }
        }
        return series
    }

    private func throughput(base: WorkerConfiguration, driver: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform) async throws {
        output("\nthroughput, batch of \(options.batchJobs) `true` jobs")
        var workerRates: [Int: Double] = [:]
        for concurrency in options.concurrencies {
            let aloneStart = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                let perTask = (0..<concurrency).map { slot in stride(from: slot, to: options.batchJobs, by: concurrency).map { $0 } }
                for indices in perTask {
                    group.addTask {
                        for i in indices {
                            _ = try await driver.withVM(base.vmConfiguration(network: false), logger: logger) { session in
                                try await session.run(RunRequest(id: "tp-alone-\(i)", workload: .shell(command: "true")), timeout: .seconds(30))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let aloneRate = Double(options.batchJobs) / seconds(.now - aloneStart)

            var configuration = base
            configuration.concurrency = concurrency
            let (workerRate, cpuPerJob) = try await batch(configuration, driver: driver, platform: platform, ids: "tp-\(concurrency)")
            workerRates[concurrency] = workerRate
            let speedup = workerRates[1].map { String(format: "  (%.2fx of 1 VM)", workerRate / $0) } ?? ""
            output(String(format: "  %d VM%@: worker %.2f jobs/s, driver alone %.2f jobs/s%@; host CPU per job through the worker %.0f ms",
                concurrency, concurrency == 1 ? " " : "s", workerRate, aloneRate, speedup, cpuPerJob))
        }
    }

    /// A batch of `options.batchJobs` `true` jobs pushed at once through a worker: jobs per second from the
    /// push to the last terminal status, and the host's CPU milliseconds per job.
    func batch(
        _ configuration: WorkerConfiguration, driver: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform, ids prefix: String
    ) async throws -> (jobsPerSecond: Double, cpuMillisecondsPerJob: Double) {
        let cpuStart = HostCPU.now()
        let rate = try await withWorker(configuration, driver: driver) { _ in
            let ids = (0..<options.batchJobs).map { "\(prefix)-\($0)" }
            let start = ContinuousClock.now
            try await platform.push(ids.map { #"{"id":"\#($0)","command":"true"}"# })
            for id in ids { try await platform.waitForTerminal(id) }
            return Double(options.batchJobs) / seconds(.now - start)
        }
        _ = driver.takeSpans()
        return (rate, HostCPU.millisecondsPerJob(since: cpuStart, jobs: options.batchJobs))
    }

    /// Runs a worker service while `body` runs, then cancels it (every job is finished by then).
    func withWorker<T: Sendable>(
        _ configuration: WorkerConfiguration, driver: any MicroVMDriver, _ body: (WorkerService) async throws -> T
    ) async throws -> T {
        var quiet = logger
        quiet.logLevel = .warning
        let assembly = try await WorkerAssembly(configuration: configuration, driver: driver, logger: quiet)
        let service = Task { try await assembly.service.run() }
        defer {
            service.cancel()
            assembly.close()
        }
        let value = try await body(assembly.service)
        service.cancel()
        _ = await service.result
        return value
    }

    func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The platform side: RPUSH jobs, BLPOP status lists.
struct WorkerBenchmarkPlatform: Sendable {
    let client: RedisClient
    /// The throw-away redis-server's, for its share of the host CPU.
    let redisPID: Int32?

    func push(_ payloads: String...) async throws { try await push(payloads) }

    func push(_ payloads: [String]) async throws {
        _ = try await client.send(RedisCommand("RPUSH", arguments: ["jobs"] + payloads))
    }

    /// Pops the job's list until its terminal status, then drops the trailing elements.
    func waitForTerminal(_ id: String) async throws {
        _ = try await done(id)
    }

    /// Pops the job's list until its terminal status and returns what followed `done` (stdout, stderr,
    /// result JSON); a `failed` job throws with its reason.
    func done(_ id: String, within timeout: Duration = .seconds(60)) async throws -> [String] {
        let seconds = timeout.components.seconds
        while true {
            guard let pair = try await client.send(RedisCommand("BLPOP", id, Int(seconds)), as: [String]?.self), pair.count == 2 else {
                throw WorkerBenchmarkError(message: "job \(id): no status within \(seconds) s")
            }
            if pair[1] == "done" || pair[1] == "failed" {
                let rest = try await client.send(RedisCommand("LRANGE", id, 0, -1), as: [String].self)
                if pair[1] == "failed" { throw WorkerBenchmarkError(message: "job \(id) failed: \(rest.first ?? "")") }
                _ = try await client.send(RedisCommand("DEL", id))
                return rest
            }
        }
    }
}

struct WorkerBenchmarkError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
