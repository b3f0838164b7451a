import Foundation
import Logging
import NIOCore
import NIOPosix
import RESP
import RedisClient
import TestSupport

/// `codebench-worker bench redis`: our client against `redis-benchmark` on the same freshly started
/// `redis-server`, with matching parameters (connections, pipeline depth, requests, payload), in many
/// short rounds that run each test for both back to back; prints medians and per-round ratios.
///
/// The latency test also measures a bare SwiftNIO ping-pong handler (no client, no async/await) on
/// the same event loop: the floor any NIO-based client can reach on this machine, so that the gap to
/// redis-benchmark can be split into our client's overhead and what NIO and the host cost.
public struct RedisBenchmark: Sendable {
    public struct Options: Sendable {
        /// Requests per throughput test and round.
        public var requests = 50_000
        /// Pipeline depth for the throughput tests (`-P`).
        public var pipeline = 16
        /// Connections for the throughput tests (`-c`).
        public var clients = 1
        /// Requests for the latency test (`-c 1 -P 1`).
        public var latencyRequests = 5_000
        /// Value size in bytes (`-d`).
        public var valueSize = 3
        /// Short interleaved rounds; each runs every test for both clients, and per-round ratios' medians are reported.
        public var rounds = 15
        public var redisBenchmarkPath = "/usr/bin/redis-benchmark"
        /// Our client's ``RedisClientConfiguration/replyBusyPoll``.
        public var replyBusyPoll = RedisClientConfiguration(endpoint: .unixSocket(path: "")).replyBusyPoll
        /// Run our side on the client's event loop (``EventLoopTaskExecutor``) instead of the global executor.
        public var pinToEventLoop = true

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

    /// Each round's figures, ours and redis-benchmark's side by side: ratios are taken per round (the
    /// two ran back to back, so they saw the same machine) and their median reported.
    struct Figures {
        struct Pair {
            var ours: Double
            var theirs: Double
        }
        /// Ops/s per test, including "GET -P 1" from the latency runs.
        var throughput: [String: [Pair]] = [:]
        /// Latency percentiles in microseconds ("p50", "p95", "p99"); `ours` as measured, not bucketed.
        var latency: [String: [Pair]] = [:]
        /// Ours with ``RedisClientConfiguration/replyBusyPoll`` off, against redis-benchmark's of the same round.
        var sleeping: [String: [Pair]] = [:]
        /// The bare NIO ping-pong's percentiles against redis-benchmark's of the same round.
        var floor: [String: [Pair]] = [:]
    }

    static let throughputTests = ["SET", "GET", "RPUSH", "LPOP"]

    public func run() async throws {
        let elg = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await measure(elg)
            try await elg.shutdownGracefully()
        } catch {
            try? await elg.shutdownGracefully()
            throw error
        }
    }

    private func measure(_ elg: MultiThreadedEventLoopGroup) async throws {
        try await withRedisServer { server in
            var configuration = try RedisClientConfiguration(url: server.url)
            configuration.timeouts.command = .seconds(60)
            configuration.replyBusyPoll = options.replyBusyPoll
            let client = RedisClient(configuration: configuration, eventLoopGroup: elg, logger: logger)
            defer { client.close() }
            var sleepingConfiguration = configuration
            sleepingConfiguration.replyBusyPoll = .zero
            let sleepingClient = RedisClient(configuration: sleepingConfiguration, eventLoopGroup: elg, logger: logger)
            defer { sleepingClient.close() }

            output("redis benchmark: redis-server \(server.url); \(options.rounds) short rounds, each running every test for ours and redis-benchmark back to back (order alternating)")
            output("our client runs on \(options.pinToEventLoop ? "its event loop (EventLoopTaskExecutor)" : "the global concurrent executor")")
            output("throughput: -n \(options.requests) -c \(options.clients) -P \(options.pipeline) -d \(options.valueSize); latency: -n \(options.latencyRequests) -c 1 -P 1 GET; per round")
            // Warm-up: connections, page faults, the server's dict growth.
            _ = try await onOurExecutor(client) { try await throughput(client, command: "SET", requests: 20_000) }
            _ = try await onOurExecutor(client) { try await latency(client, requests: options.latencyRequests) }
            var figures = Figures()
            for round in 1...options.rounds {
                try await measureThroughput(round: round, client: client, port: server.port, into: &figures)
                try await measureLatency(round: round, clients: (client, sleepingClient), elg: elg, port: server.port, into: &figures)
                if round % 5 == 0 || round == options.rounds { output("  round \(round) of \(options.rounds) done") }
            }
            report(figures)
        }
    }

    /// Short runs interleaved finely: on a shared or nested host the machine's speed drifts by more
    /// than the difference being measured within seconds, so long back-to-back runs compare different machines.
    private func measureThroughput(round: Int, client: RedisClient, port: Int, into figures: inout Figures) async throws {
        for test in Self.throughputTests {
            var ours = 0.0
            var theirs: Double?
            for side in round % 2 == 0 ? [0, 1] : [1, 0] {
                if side == 0 {
                    ours = try await onOurExecutor(client) { try await throughput(client, command: test, requests: options.requests) }
                } else {
                    theirs = try redisBenchmark(port: port, arguments: [
                        "-c", String(options.clients), "-P", String(options.pipeline), "-n", String(options.requests),
                        "-d", String(options.valueSize), "-t", test.lowercased(),
                    ])[test]?.rps
                }
            }
            if let theirs { figures.throughput[test, default: []].append(.init(ours: ours, theirs: theirs)) }
        }
    }

    /// Ours (busy-polling for replies, the default, and not), the bare NIO floor and redis-benchmark,
    /// in an order rotating per round.
    private func measureLatency(
        round: Int, clients: (polling: RedisClient, sleeping: RedisClient), elg: MultiThreadedEventLoopGroup, port: Int,
        into figures: inout Figures
    ) async throws {
        var ours: [String: Double] = [:]
        var sleeping: [String: Double] = [:]
        var floor: [String: Double] = [:]
        var theirs: RedisBenchmarkResult?
        for step in 0..<4 {
            switch (round + step) % 4 {
            case 0:
                ours = try await onOurExecutor(clients.polling) { try await latency(clients.polling, requests: options.latencyRequests) }
            case 3:
                sleeping = try await onOurExecutor(clients.sleeping) { try await latency(clients.sleeping, requests: options.latencyRequests) }
            case 1:
                floor = try await nioFloorLatency(elg, port: port, requests: options.latencyRequests)
            default:
                theirs = try redisBenchmark(port: port, arguments: [
                    "-c", "1", "-P", "1", "-n", String(options.latencyRequests), "-d", String(options.valueSize), "-t", "get",
                ])["GET"]
            }
        }
        guard let theirs else { return }
        let theirLatency = ["p50": theirs.p50 * 1000, "p95": theirs.p95 * 1000, "p99": theirs.p99 * 1000]
        for (p, value) in theirLatency {
            figures.latency[p, default: []].append(.init(ours: ours[p] ?? .nan, theirs: value))
            figures.sleeping[p, default: []].append(.init(ours: sleeping[p] ?? .nan, theirs: value))
            figures.floor[p, default: []].append(.init(ours: floor[p] ?? .nan, theirs: value))
        }
        figures.throughput["GET -P 1", default: []].append(.init(ours: ours["ops"] ?? .nan, theirs: theirs.rps))
    }

    /// Runs our side on the client's event loop when pinned (redis-benchmark, which blocks, runs outside).
    private func onOurExecutor<T: Sendable>(_ client: RedisClient, _ body: () async throws -> T) async throws -> T {
        guard options.pinToEventLoop else { return try await body() }
        return try await withTaskExecutorPreference(client.executor) { try await body() }
    }

    // MARK: - Our client

    /// Ops/s of `command` over `clients` dedicated connections, `pipeline` commands per round trip.
    private func throughput(_ client: RedisClient, command: String, requests: Int) async throws -> Double {
        let value = String(repeating: "x", count: options.valueSize)
        let single: RedisCommand
        switch command {
        case "SET": single = RedisCommand("SET", "key:__rand_int__", value)
        case "GET": single = RedisCommand("GET", "key:__rand_int__")
        case "RPUSH": single = RedisCommand("RPUSH", "mylist", value)
        default: single = RedisCommand("LPOP", "mylist")
        }
        let batch = Array(repeating: single, count: options.pipeline)
        let perClient = requests / options.clients / options.pipeline
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<options.clients {
                group.addTask {
                    try await client.withDedicatedConnection { connection in
                        for _ in 0..<perClient {
                            let replies = try await connection.sendPipeline(batch, timeout: nil)
                            precondition(replies.count == batch.count)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        return Double(perClient * options.clients * options.pipeline) / elapsed.seconds
    }

    /// Round-trip percentiles (us) of single GETs, one at a time, on one connection; also records GET -P 1 throughput.
    private func latency(_ client: RedisClient, requests: Int) async throws -> [String: Double] {
        let command = RedisCommand("GET", "key:__rand_int__")
        var samples: [Double] = []
        samples.reserveCapacity(requests)
        let started = ContinuousClock.now
        try await client.withDedicatedConnection { connection in
            let clock = ContinuousClock()
            for _ in 0..<requests {
                let t0 = clock.now
                _ = try await connection.send(command, timeout: nil)
                samples.append((clock.now - t0).seconds * 1_000_000)
            }
        }
        let elapsed = ContinuousClock.now - started
        samples.sort()
        func percentile(_ p: Double) -> Double { nearestRankPercentile(samples, p) ?? .nan }
        return ["p50": percentile(50), "p95": percentile(95), "p99": percentile(99), "ops": Double(requests) / elapsed.seconds]
    }
}
