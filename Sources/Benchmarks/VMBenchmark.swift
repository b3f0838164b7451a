import AgentProtocol
import Foundation
import Logging
import MicroVM
import QEMUDriver
import TestSupport

/// `codebench-worker bench vm`: launch-to-result latency of `true` through ``QEMUDriver``, next to a
/// bare QEMU launch of the same command line with a minimal client (``VMBareLaunch``), both cold
/// (kernel boot) and warm (restored from the driver's snapshot), interleaved in one run so every
/// series sees the same machine; plus QEMU's peak RSS per VM.
public struct VMBenchmark: Sendable {
    public struct Options: Sendable {
        public var runs = 20
        public var memoryMiB = 256
        public var imageDirectory = GuestImage.defaultDirectory
        public var runtimeDirectory = "/run/codebench"
        public var accelerator = QEMUDriver.Accelerator.tcg
        /// Where the warm series' snapshot is kept; nil measures cold launches only.
        public var snapshotDirectory: String? = QEMUDriver.Configuration.defaultSnapshotDirectory
        /// Also measure the driver with QEMU jailed (``QEMUJail``), interleaved with the rest: the jail's cost per start.
        public var jailed = true
        /// VMs kept alive at once for the memory footprint of each restore mode.
        public var aliveVMs = 8

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

    /// One launch's figures.
    struct Launch {
        var latency: Duration
        var boot: Duration
        var rssKiB: Int?
        /// Host CPU time of the VM's VMM (with the jail's launcher and the guest), spawn to teardown.
        var cpu: Duration?
        /// How long QEMU's vCPU thread had run when the result was read (driver launches only).
        var vcpu: Duration?
    }

    struct Series {
        var latency: [Duration] = []
        var boot: [Duration] = []
        var rssKiB: [Int] = []
        /// Host CPU time of each VM's VMM (with the jail's launcher and the guest), spawn to teardown.
        var cpu: [Duration] = []
        /// Of `cpu`, QEMU's vCPU thread (the guest) and everything else, per launch that had both.
        var vcpu: [Duration] = []
        var outsideVCPU: [Duration] = []
        /// QEMU's memory with the one VM alive, right after its job (the restore-mode series only).
        var footprints: [VMMemoryFootprint] = []

        mutating func add(_ sample: Launch) {
            latency.append(sample.latency)
            boot.append(sample.boot)
            if let rss = sample.rssKiB { rssKiB.append(rss) }
            if let cpu = sample.cpu { self.cpu.append(cpu) }
            if let cpu = sample.cpu, let vcpu = sample.vcpu {
                self.vcpu.append(vcpu)
                outsideVCPU.append(cpu - vcpu)
            }
        }

        mutating func add(_ sample: VMBareLaunch.Sample) {
            add(Launch(latency: sample.launchToResult, boot: sample.launchToHello, rssKiB: sample.peakRSSKiB, cpu: sample.cpuTime))
        }
    }

    public func run() async throws {
        let image = try GuestImageFixture.require(.at(options.imageDirectory))
        let driver = QEMUDriver(configuration: .init(accelerator: options.accelerator))
        let vm = VMConfiguration(image: image, memoryMiB: options.memoryMiB, runtimeDirectory: options.runtimeDirectory)
        let request = RunRequest(id: "bench", workload: .shell(command: "true"))
        let bareDirectory = try RuntimeDirectory.create(under: options.runtimeDirectory, prefix: "b")
        defer { bareDirectory.remove() }
        let bareSocket = try bareDirectory.socketPath("agent.sock")
        let binary = driver.configuration.binaryPath
        let coldArguments = driver.commandLineArguments(for: vm, accelerator: options.accelerator, agentSocketPath: bareSocket)

        var warm: (driver: QEMUDriver, arguments: [String], state: String)?
        // The same snapshot directory: a copy-on-write snapshot has a key of its own.
        let copyOnWrite = options.snapshotDirectory.map {
            QEMUDriver(configuration: .init(accelerator: options.accelerator, snapshotDirectory: $0, restoreMode: .copyOnWrite))
        }
        if let snapshotDirectory = options.snapshotDirectory {
            let warmDriver = QEMUDriver(configuration: .init(accelerator: options.accelerator, snapshotDirectory: snapshotDirectory))
            let state = try await warmDriver.snapshotState(for: vm, logger: logger)
            warm = (
                warmDriver, warmDriver.commandLineArguments(for: vm, accelerator: options.accelerator, agentSocketPath: bareSocket, incomingStatePath: state),
                state
            )
        }
        // The jailed drivers: same machine, QEMU as its own uid in its namespaces and cgroup.
        let jailedCold = options.jailed ? QEMUDriver(configuration: .init(accelerator: options.accelerator, jail: QEMUJail())) : nil
        let jailedWarm = options.jailed
            ? options.snapshotDirectory.map { QEMUDriver(configuration: .init(accelerator: options.accelerator, snapshotDirectory: $0, jail: QEMUJail())) }
            : nil
        // The worker's default: jailed, copy-on-write.
        let jailedCopyOnWrite = options.jailed
            ? options.snapshotDirectory.map {
                QEMUDriver(configuration: .init(accelerator: options.accelerator, snapshotDirectory: $0, restoreMode: .copyOnWrite, jail: QEMUJail()))
            }
            : nil

        output("vm benchmark: \(options.runs) launches of `true` per series, interleaved; \(driver.name), \(options.memoryMiB) MiB, 1 vCPU")
        // One of each first so the kernel, rootfs, snapshot and QEMU are in the page cache for every series.
        _ = try await ours(driver: driver, vm: vm, request: request)
        _ = try await VMBareLaunch.sample(binary: binary, arguments: coldArguments, socketPath: bareSocket, request: request, timeout: .seconds(30))
        if let warm {
            _ = try await ours(driver: warm.driver, vm: vm, request: request)
            _ = try await VMBareLaunch.sample(
                binary: binary, arguments: warm.arguments, socketPath: bareSocket, request: request, resume: .fresh(), incomingStatePath: warm.state, timeout: .seconds(30))
        }
        for other in [jailedCold, jailedWarm, copyOnWrite, jailedCopyOnWrite].compactMap({ $0 }) { _ = try await ours(driver: other, vm: vm, request: request) }

        var series = (cold: Series(), coldBare: Series(), warm: Series(), warmBare: Series(), coldJailed: Series(), warmJailed: Series())
        var copyOnWriteSeries = Series()
        var jailedCopyOnWriteSeries = Series()
        var resumes = ResumeSamples()
        for _ in 0..<options.runs {
            series.cold.add(try await ours(driver: driver, vm: vm, request: request))
            series.coldBare.add(
                try await VMBareLaunch.sample(binary: binary, arguments: coldArguments, socketPath: bareSocket, request: request, timeout: .seconds(30)))
            if let warm {
                var footprints = series.warm.footprints
                series.warm.add(try await ours(driver: warm.driver, vm: vm, request: request, footprints: &footprints))
                series.warm.footprints = footprints
                var resume = AgentResume.fresh()
                resume.tracePhases = true
                let sample = try await VMBareLaunch.sample(
                    binary: binary, arguments: warm.arguments, socketPath: bareSocket, request: request, resume: resume, incomingStatePath: warm.state, timeout: .seconds(30))
                series.warmBare.add(sample)
                resumes.add(sample)
            }
            if let jailedCold { series.coldJailed.add(try await ours(driver: jailedCold, vm: vm, request: request)) }
            if let jailedWarm { series.warmJailed.add(try await ours(driver: jailedWarm, vm: vm, request: request)) }
            if let copyOnWrite {
                var footprints = copyOnWriteSeries.footprints
                copyOnWriteSeries.add(try await ours(driver: copyOnWrite, vm: vm, request: request, footprints: &footprints))
                copyOnWriteSeries.footprints = footprints
            }
            if let jailedCopyOnWrite {
                var footprints = jailedCopyOnWriteSeries.footprints
                jailedCopyOnWriteSeries.add(try await ours(driver: jailedCopyOnWrite, vm: vm, request: request, footprints: &footprints))
                jailedCopyOnWriteSeries.footprints = footprints
            }
        }
        // Many VMs alive at once, per restore mode: what density costs in host memory.
        // The job inside the guest, phase by phase, in the fastest restore there is.
        var phases = PhaseSamples()
        if let restoring = copyOnWrite ?? warm?.driver {
            for _ in 0..<options.runs { try await phaseSample(driver: restoring, vm: vm, request: request, into: &phases) }
        }
        var alive: [(name: String, footprints: [VMMemoryFootprint])] = []
        if let warm, let copyOnWrite, options.aliveVMs > 0 {
            let modes = [("streamed", warm.driver), ("copy-on-write", copyOnWrite)] + (jailedCopyOnWrite.map { [("copy-on-write, jailed", $0)] } ?? [])
            for (name, driver) in modes {
                alive.append((name, try await footprintsAlive(options.aliveVMs, driver: driver, vm: vm, request: request)))
            }
        }

        if !phases.fresh.isEmpty { Self.phaseTable(phases).forEach(output) }
        if !resumes.roundTrips.isEmpty { Self.resumeTable(resumes).forEach(output) }
        output(Self.line("cold: driver (withVM)", series.cold))
        output(Self.line("cold: bare qemu + client", series.coldBare))
        output(Self.comparison("cold", series.cold, series.coldBare))
        if warm != nil {
            output(Self.line("warm: driver (snapshot)", series.warm))
            output(Self.line("warm: bare qemu -incoming", series.warmBare))
            output(Self.comparison("warm", series.warm, series.warmBare))
        }
        if copyOnWrite != nil {
            output(Self.line("warm: driver (copy-on-write)", copyOnWriteSeries))
            output(Self.restoreModes(streamed: series.warm, copyOnWrite: copyOnWriteSeries))
            Self.cpuSplit(streamed: series.warm, copyOnWrite: copyOnWriteSeries).forEach(output)
            // One VM alive: each launch's QEMU right after its job.
            output(VMMemoryFootprint.line("memory, streamed, 1 alive", series.warm.footprints, alive: false))
            output(VMMemoryFootprint.line("memory, copy-on-write, 1 alive", copyOnWriteSeries.footprints, alive: false))
            // Every copy-on-write snapshot of this process maps the same template memory size.
            let templateKiB = QEMUDriver.templateMemoryInUse().first.map { $0.allocatedBytes / 1024 }
            for (name, footprints) in alive {
                let template = name.hasPrefix("copy-on-write") ? templateKiB : nil
                output(VMMemoryFootprint.line("memory, \(name), \(options.aliveVMs) alive", footprints, alive: true, templateMemoryKiB: template))
            }
        }
        if options.jailed {
            let launches = max(options.runs, 10)
            let cost = try await JailLaunchCost.measure(launches: launches)
            output(
                String(
                    format: "jail launcher alone: %.1f ms of host CPU per launch (codebench-jail, /bin/true as QEMU), %.1f ms spawning /bin/true directly (median of %d each, interleaved)",
                    cost.jailed, cost.direct, launches))
        }
        if jailedCold != nil {
            output(Self.line("cold: driver, QEMU jailed", series.coldJailed))
            output(Self.jailCost("cold", jailed: series.coldJailed, unjailed: series.cold))
        }
        if jailedWarm != nil {
            output(Self.line("warm: driver, QEMU jailed", series.warmJailed))
            output(Self.jailCost("warm", jailed: series.warmJailed, unjailed: series.warm))
        }
        if jailedCopyOnWrite != nil {
            output(Self.line("warm: jailed, copy-on-write", jailedCopyOnWriteSeries))
            output(VMMemoryFootprint.line("memory, copy-on-write, jailed, 1 alive", jailedCopyOnWriteSeries.footprints, alive: false))
            output("jailed " + Self.restoreModes(streamed: series.warmJailed, copyOnWrite: jailedCopyOnWriteSeries))
            Self.cpuSplit(streamed: series.warmJailed, copyOnWrite: jailedCopyOnWriteSeries, jailed: true).forEach(output)
            output(Self.jailCost("copy-on-write", jailed: jailedCopyOnWriteSeries, unjailed: copyOnWriteSeries))
        }
        for memory in QEMUDriver.templateMemoryInUse() {
            output(String(format: "template memfd %@: %.1f MiB of RAM (st_blocks) for a %d MiB guest", memory.snapshot, Double(memory.allocatedBytes) / 1_048_576, memory.sizeBytes >> 20))
        }
    }

    static func restoreModes(streamed: Series, copyOnWrite: Series) -> String {
        let cpu =
            streamed.cpu.isEmpty || copyOnWrite.cpu.isEmpty
            ? "" : String(format: ", host CPU per VM %.3f", seconds(percentile(copyOnWrite.cpu, 50)) / seconds(percentile(streamed.cpu, 50)))
        return String(
            format: "restore modes: p50 copy-on-write/streamed launch→hello %.3f, launch→result %.3f%@",
            seconds(percentile(copyOnWrite.boot, 50)) / seconds(percentile(streamed.boot, 50)),
            seconds(percentile(copyOnWrite.latency, 50)) / seconds(percentile(streamed.latency, 50)), cpu)
    }

    /// Starts `count` VMs one after the other, each running `request`, and reads every QEMU's memory
    /// while all are alive.
    private func footprintsAlive(_ count: Int, driver: QEMUDriver, vm: VMConfiguration, request: RunRequest) async throws -> [VMMemoryFootprint] {
        guard count > 0 else {
            // Jailed, the child is the launcher (`codebench-jail`), and QEMU its child.
            return VMProcessCensus.take(runtimeDirectory: vm.runtimeDirectory).vmmChildren.compactMap {
                VMMemoryFootprint(pid: VMProcessCensus.children(of: $0).first ?? $0)
            }
        }
        return try await driver.withVM(vm, logger: logger) { session in
            _ = try await session.run(request, timeout: .seconds(30))
            return try await footprintsAlive(count - 1, driver: driver, vm: vm, request: request)
        }
    }

    static func jailCost(_ name: String, jailed: Series, unjailed: Series) -> String {
        let cost = percentile(jailed.latency, 50) - percentile(unjailed.latency, 50)
        return String(format: "%@: the jail's cost per start, p50 jailed - unjailed: %+.1f ms", name, seconds(cost) * 1000)
    }

    static func comparison(_ name: String, _ ours: Series, _ bare: Series) -> String {
        let ourP50 = percentile(ours.latency, 50)
        let ratio = seconds(ourP50) / seconds(percentile(bare.latency, 50))
        return String(format: "%@: p50 ratio driver/bare %.3f (target <= 1.15); driver p50 %.3f s, %@ 1 s", name, ratio, seconds(ourP50), ourP50 < .seconds(1) ? "below" : "NOT below")
    }

    private func ours(driver: QEMUDriver, vm: VMConfiguration, request: RunRequest) async throws -> Launch {
        var footprints: [VMMemoryFootprint] = []
        return try await ours(driver: driver, vm: vm, request: request, footprints: &footprints)
    }

    /// One launch of `request`; appends QEMU's memory right after the job to `footprints`.
    private func ours(
        driver: QEMUDriver, vm: VMConfiguration, request: RunRequest, footprints: inout [VMMemoryFootprint]
    ) async throws -> Launch {
        let clock = ContinuousClock()
        let start = clock.now
        let runtimeRoot = vm.runtimeDirectory
        let usage = VMUsageRecorder()
        let sample = try await driver.withVM(vm, logger: logger, usage: usage.record) { session in
            _ = try await session.run(request, timeout: .seconds(30))
            let latency = clock.now - start
            // The QEMU child of this process is the VM's VMM (one VM at a time here); jailed, the
            // child is the launcher (`codebench-jail`), and QEMU its child.
            let child = VMProcessCensus.take(runtimeDirectory: runtimeRoot).vmmChildren.first
            let qemu = child.map { VMProcessCensus.children(of: $0).first ?? $0 }
            return (
                launch: Launch(
                    latency: latency, boot: session.bootDuration, rssKiB: qemu.flatMap { VMPeakRSS.kib(of: $0) },
                    vcpu: qemu.flatMap { VMMThreadTimes(pid: $0)?.vcpu }),
                footprint: qemu.flatMap { VMMemoryFootprint(pid: $0) }
            )
        }
        if let footprint = sample.footprint { footprints.append(footprint) }
        var launch = sample.launch
        launch.cpu = usage.usage.vmmCPUTime
        return launch
    }

    /// Both restore modes' host CPU per VM split into the guest (QEMU's vCPU thread, under TCG mostly
    /// translating code the clone runs for the first time) and the rest (QEMU's start, the restore,
    /// I/O and exit, the jail's launcher), and what that leaves of "copy-on-write at half the CPU".
    static func cpuSplit(streamed: Series, copyOnWrite: Series, jailed: Bool = false) -> [String] {
        guard !streamed.vcpu.isEmpty, !copyOnWrite.vcpu.isEmpty else { return [] }
        func ms(_ values: [Duration]) -> Double { seconds(percentile(values, 50)) * 1000 }
        let prefix = jailed ? "jailed " : ""
        let lines = [("streamed", streamed), ("copy-on-write", copyOnWrite)].map { name, series in
            String(
                format: "%@host CPU split, %@: p50 %.0f ms per VM = vCPU thread (the guest) %.0f ms + outside it %.0f ms (n=%d)",
                prefix, name, ms(series.cpu), ms(series.vcpu), ms(series.outsideVCPU), series.vcpu.count)
        }
        let half = ms(streamed.cpu) / 2
        return lines + [
            String(
                format: "%@host CPU split: copy-on-write saves %.0f ms outside the vCPU thread; half of streamed is %.0f ms, %@ the copy-on-write vCPU thread alone (%.0f ms)",
                prefix, ms(streamed.outsideVCPU) - ms(copyOnWrite.outsideVCPU), half,
                ms(copyOnWrite.vcpu) > half ? "less than" : "not less than", ms(copyOnWrite.vcpu))
        ]
    }

    static func line(_ name: String, _ series: Series) -> String {
        let rss = series.rssKiB.sorted()
        return String(
            format: "%-27@ launch→result p50 %.3f s  p95 %.3f s  (min %.3f, max %.3f)   launch→hello p50 %.3f s   peak RSS p50 %d MiB, max %d MiB   host CPU p50 %@",
            name as NSString,
            seconds(percentile(series.latency, 50)), seconds(percentile(series.latency, 95)),
            seconds(series.latency.min() ?? .zero), seconds(series.latency.max() ?? .zero),
            seconds(percentile(series.boot, 50)),
            (rss.isEmpty ? 0 : rss[rss.count / 2]) / 1024, (rss.last ?? 0) / 1024,
            series.cpu.isEmpty ? "-" : String(format: "%.0f ms", seconds(percentile(series.cpu, 50)) * 1000))
    }

    /// Nearest-rank percentile.
    static func percentile(_ values: [Duration], _ p: Int) -> Duration {
        nearestRankPercentile(values.sorted(), Double(p)) ?? .zero
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
