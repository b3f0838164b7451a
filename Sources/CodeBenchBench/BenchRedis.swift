import ArgumentParser
import Benchmarks
import Logging

/// `codebench-bench redis`: our Redis client next to redis-benchmark on the same server.
struct BenchRedis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Pipelined SET/GET/RPUSH/LPOP throughput and single-request GET latency (p50/p95/p99) of our client, next to redis-benchmark with matching parameters on the same freshly started redis-server."
    )

    @Option(name: .shortAndLong, help: "Requests per throughput test and round (-n).") var requests = 50_000
    @Option(name: .customShort("P"), help: "Pipeline depth for the throughput tests (-P).") var pipeline = 16
    @Option(name: .shortAndLong, help: "Connections for the throughput tests (-c).") var clients = 1
    @Option(help: "Requests per latency test and round (-c 1 -P 1).") var latencyRequests = 5_000
    @Option(name: .customShort("d"), help: "Value size in bytes (-d).") var valueSize = 3
    @Option(help: "Short rounds, each running every test for ours and redis-benchmark back to back; medians of the per-round ratios are reported.") var rounds = 15
    @Option(help: "Our client's replyBusyPoll in microseconds (0: off).") var busyPollMicroseconds = 50
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
        options.replyBusyPoll = .microseconds(max(0, busyPollMicroseconds))
        try await RedisBenchmark(options: options, logger: Logger(label: "codebench.bench.redis"), output: { print($0) }).run()
    }
}
