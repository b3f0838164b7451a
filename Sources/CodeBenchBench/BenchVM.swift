import ArgumentParser
import Benchmarks
import Foundation
import Logging
import QEMUDriver

/// `codebench-bench vm`: launch-to-result latency through the QEMU driver vs a bare QEMU launch, cold and warm.
struct BenchVM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm",
        abstract: "Launch-to-result latency of `true` (p50, p95) through the QEMU driver next to a bare QEMU launch, cold and from a snapshot (streamed and copy-on-write restores), with QEMU jailed and not, QEMU's peak RSS, and each restore mode's memory with 1 and N VMs alive."
    )

    @Option(help: "Launches per series.") var runs = 20
    @Option(help: "Guest memory in MiB.") var memoryMib = 256
    @Option(help: "tcg or kvm.") var accelerator = "tcg"
    @Option(help: "Directory with vmlinux and rootfs.ext4.") var imageDir: String?
    @Option(help: "Directory for per-VM sockets.") var runtimeDir = "/run/codebench"
    @Option(help: "Snapshot directory of the warm series; 'none' measures cold launches only.")
    var snapshotDir = QEMUDriver.Configuration.defaultSnapshotDirectory
    @Option(help: "VMs kept alive at once for each restore mode's memory footprint (0 skips it).") var aliveVms = 8
    @Flag(help: "Skip the series with QEMU jailed (their cost per start is printed otherwise).") var noJail = false
    @Option(help: "Log level.") var logLevel = "warning"

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        guard let accelerator = QEMUDriver.Accelerator(rawValue: accelerator) else {
            throw ValidationError("--accelerator must be tcg or kvm")
        }
        var options = VMBenchmark.Options()
        options.runs = max(1, runs)
        options.memoryMiB = memoryMib
        options.accelerator = accelerator
        options.runtimeDirectory = runtimeDir
        if let imageDir { options.imageDirectory = imageDir }
        options.snapshotDirectory = snapshotDir == "none" ? nil : snapshotDir
        options.jailed = !noJail
        options.aliveVMs = max(0, aliveVms)
        try await VMBenchmark(options: options, logger: Logger(label: "codebench.bench.vm"), output: { print($0) }).run()
    }
}
