import ArgumentParser
import Benchmarks
import Foundation
import Logging
import Worker

/// `codebench-bench worker`: the worker's own cost per job, next to the VM driver alone.
struct BenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Enqueue-to-done latency (p50/p95/p99) of `true` and a Python one-liner through the worker, the worker's overhead and host CPU per job, and throughput with 1, 2, 4 and 8 VMs, each next to the VM driver alone; the jail's cost per job; both QEMU restore modes side by side; a judge job of N cases next to N separate jobs; each language's hello world."
    )

    @Option(help: "Jobs per latency series.") var jobs = 20
    @Option(help: "Jobs per throughput batch.") var batch = 12
    @Option(help: "Concurrencies to measure, comma-separated.") var concurrency = "1,2,4,8"
    @Option(help: "Cases of the judge job, and separate jobs it is compared with.") var judgeCases = 20
    @Option(help: "Hello-world jobs per language of the image.") var languageJobs = 3
    @Option(help: "Sections to run, comma-separated: latency, jail, restore, throughput, judge, languages (default: all).") var only: String?
    @Option(help: "Directory with vmlinux and rootfs.ext4.") var imageDir: String?
    @Option(help: "QEMU accelerator: tcg, kvm or auto.") var accelerator = "tcg"
    @Option(help: "Log level.") var logLevel = "warning"

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        var options = WorkerBenchmark.Options()
        options.latencyJobs = max(1, jobs)
        options.batchJobs = max(1, batch)
        options.concurrencies = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            .filter { $0 > 0 }
        options.judgeCases = max(1, judgeCases)
        options.languageJobs = max(1, languageJobs)
        if let only {
            let names = only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let sections = names.compactMap(WorkerBenchmark.Section.init(rawValue:))
            guard sections.count == names.count, !sections.isEmpty else {
                throw ValidationError("--only takes \(WorkerBenchmark.Section.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.sections = Set(sections)
        }
        if let imageDir { options.imageDirectory = imageDir }
        guard let accelerator = WorkerConfiguration.QEMUAcceleratorChoice(rawValue: accelerator) else {
            throw ValidationError("--accelerator must be tcg, kvm or auto")
        }
        options.qemuAccelerator = accelerator
        try await WorkerBenchmark(options: options, logger: Logger(label: "codebench.bench.worker"), output: { print($0) }).run()
    }
}
