import ArgumentParser
import Benchmarks
import Logging

/// `codebench-worker bench redis`: our Redis client next to redis-benchmark on the same server.
struct BenchRedis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Pipelined SET/GET/RPUSH/LPOP throughput and single-request GET latency (p50/p95/p99) of our client, next to redis-benchmark with matching parameters on the same freshly started redis-server."
    )

    @Option(name: .shortAndLong, help: "Requests per throughput test and round (-n).") var requests = 200_000
    @Option(name: .customShort("P"), help: "Pipeline depth for the throughput tests (-P).") var pipeline = 16
    @Option(name: .shortAndLong, help: "Connections for the throughput tests (-c).") var clients = 1
    @Option(help: "Requests for the latency test (-c 1 -P 1).") var latencyRequests = 50_000
    @Option(name: .customShort("d"), help: "Value size in bytes (-d).") var valueSize = 3
    @Option(help: "Rounds; medians are reported.") var rounds = 3
    @Flag(help: "Run our side on the global concurrent executor instead of the client's event loop.") var globalExecutor = false
    @Option(help: "Log level.") var logLevel = "warning"

    func run() async throws {
        try bootstrapLogging(level: logLevel)
        var options = RedisBenchmark.Options()
        options.requests = max(1, requests)
        options.pipeline = max(1, pipeline)
        options.clients = max(1, clients)
        options.latencyRequests = max(1, latencyRequests)
        options.valueSize = max(1, valueSize)
        options.rounds = max(1, rounds)
        options.pinToEventLoop = !globalExecutor
        try await RedisBenchmark(options: options, logger: Logger(label: "codebench.bench.redis"), output: { print($0) }).run()
    }
}
