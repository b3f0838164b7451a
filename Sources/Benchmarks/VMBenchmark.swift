import AgentProtocol
import Foundation
import Logging
import MicroVM
import QEMUDriver
import TestSupport

/// `codebench-worker bench vm`: cold launch-to-result latency of `true` through ``QEMUDriver``,
/// next to a bare QEMU launch of the same command line with a minimal client (``VMBareLaunch``),
/// alternating the two in one run so both see the same machine; plus QEMU's peak RSS per VM.
public struct VMBenchmark: Sendable {
    public struct Options: Sendable {
        public var runs = 20
        public var memoryMiB = 256
        public var imageDirectory = GuestImage.defaultDirectory
        public var runtimeDirectory = "/run/codebench"
        public var accelerator = QEMUDriver.Accelerator.tcg

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

    struct Series {
        var latency: [Duration] = []
        var boot: [Duration] = []
        var rssKiB: [Int] = []
    }

    public func run() async throws {
        let image = try GuestImageFixture.require(.at(options.imageDirectory))
        let driver = QEMUDriver(configuration: .init(accelerator: options.accelerator))
        let vm = VMConfiguration(image: image, memoryMiB: options.memoryMiB, runtimeDirectory: options.runtimeDirectory)
        let request = RunRequest(id: "bench", workload: .shell(command: "true"))
        let bareDirectory = try RuntimeDirectory.create(under: options.runtimeDirectory, prefix: "b")
        defer { bareDirectory.remove() }
        let bareSocket = try bareDirectory.socketPath("agent.sock")
        let bareArguments = driver.commandLineArguments(for: vm, accelerator: options.accelerator, agentSocketPath: bareSocket)

        output("vm benchmark: \(options.runs) cold launches of `true` each way, alternating; \(driver.name), \(options.memoryMiB) MiB, 1 vCPU")
        // One of each first so the kernel, rootfs and QEMU are in the page cache for both series.
        _ = try await ours(driver: driver, vm: vm, request: request)
        _ = try await VMBareLaunch.sample(binary: driver.configuration.binaryPath, arguments: bareArguments, socketPath: bareSocket, request: request, timeout: .seconds(30))

        var driverSeries = Series()
        var bareSeries = Series()
        for _ in 0..<options.runs {
            let sample = try await ours(driver: driver, vm: vm, request: request)
            driverSeries.latency.append(sample.latency)
            driverSeries.boot.append(sample.boot)
            if let rss = sample.rssKiB { driverSeries.rssKiB.append(rss) }
            let bare = try await VMBareLaunch.sample(
                binary: driver.configuration.binaryPath, arguments: bareArguments, socketPath: bareSocket, request: request, timeout: .seconds(30))
            bareSeries.latency.append(bare.launchToResult)
            bareSeries.boot.append(bare.launchToHello)
            if let rss = bare.peakRSSKiB { bareSeries.rssKiB.append(rss) }
        }

        output(Self.line("driver (withVM → result)", driverSeries))
        output(Self.line("bare qemu + raw client", bareSeries))
        let ratio = Self.seconds(Self.percentile(driverSeries.latency, 50)) / Self.seconds(Self.percentile(bareSeries.latency, 50))
        output(String(format: "p50 ratio driver/bare: %.3f (target <= 1.15); driver p50 %@ 1 s", ratio, Self.percentile(driverSeries.latency, 50) < .seconds(1) ? "below" : "NOT below"))
    }

    private func ours(driver: QEMUDriver, vm: VMConfiguration, request: RunRequest) async throws -> (latency: Duration, boot: Duration, rssKiB: Int?) {
        let clock = ContinuousClock()
        let start = clock.now
        let runtimeRoot = vm.runtimeDirectory
        return try await driver.withVM(vm, logger: logger) { session in
            _ = try await session.run(request, timeout: .seconds(30))
            let latency = clock.now - start
            // The QEMU child of this process is the VM's VMM (one VM at a time here).
            let rss = VMProcessCensus.take(runtimeDirectory: runtimeRoot).vmmChildren.first.flatMap { VMPeakRSS.kib(of: $0) }
            return (latency, session.bootDuration, rss)
        }
    }

    static func line(_ name: String, _ series: Series) -> String {
        let rss = series.rssKiB.sorted()
        return String(
            format: "%-26@ launch→result p50 %.3f s  p95 %.3f s  (min %.3f, max %.3f)   launch→hello p50 %.3f s   peak RSS p50 %d MiB, max %d MiB",
            name as NSString,
            seconds(percentile(series.latency, 50)), seconds(percentile(series.latency, 95)),
            seconds(series.latency.min() ?? .zero), seconds(series.latency.max() ?? .zero),
            seconds(percentile(series.boot, 50)),
            (rss.isEmpty ? 0 : rss[rss.count / 2]) / 1024, (rss.last ?? 0) / 1024)
    }

    /// Nearest-rank percentile.
    static func percentile(_ values: [Duration], _ p: Int) -> Duration {
        nearestRankPercentile(values.sorted(), Double(p)) ?? .zero
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
