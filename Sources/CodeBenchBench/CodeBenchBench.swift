import ArgumentParser
import Observability

/// `codebench-bench`: benchmarks are commands that print figures, never timed tests. A binary of their
/// own, so the production `codebench-worker` links nothing that starts a throw-away redis-server.
/// Each subcommand lives in its own file (BenchRedis.swift, BenchVM.swift, BenchWorker.swift).
@main
struct CodeBenchBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codebench-bench",
        abstract: "Measure and print performance figures, each next to a baseline measured in the same run.",
        subcommands: [
            BenchRedis.self,
            BenchVM.self,
            BenchWorker.self,
        ]
    )
}

/// Logs to stderr at the level a benchmark's `--log-level` names (quiet by default: figures go to stdout).
func bootstrapLogging(level name: String) throws {
    guard StandardErrorLogging.bootstrap(levelNamed: name) != nil else {
        throw ValidationError("unknown --log-level \(name) (\(StandardErrorLogging.levelNames.joined(separator: ", ")))")
    }
}
