import ArgumentParser

/// `codebench-worker bench`: benchmarks are commands that print figures, never timed tests.
/// Each subcommand lives in its own file (BenchRedis.swift, BenchVM.swift, BenchWorker.swift).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure and print performance figures.",
        subcommands: [
            // Registered by each subcommand's file owner; keep one per line.
            BenchRedis.self,
            BenchVM.self,
            BenchWorker.self,
        ]
    )
}
