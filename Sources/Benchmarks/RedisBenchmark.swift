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

    private func report(_ figures: Figures) {
        func median(_ values: [Double]) -> Double? {
            let sorted = values.filter { !$0.isNaN }.sorted()
            return sorted.isEmpty ? nil : sorted[sorted.count / 2]
        }
        func fmt(_ value: Double?, _ decimals: Int = 0) -> String {
            value.map { String(format: "%.\(decimals)f", $0) } ?? "-"
        }
        let pad: (String, Int) -> String = { text, width in text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        /// The median ratio, and how many rounds met `target` (`higherIsBetter` decides the direction).
        func ratios(_ pairs: [Figures.Pair], ours transform: (Double) -> Double = { $0 }, target: Double, higherIsBetter: Bool) -> String {
            let values = pairs.map { transform($0.ours) / $0.theirs }.filter { $0.isFinite }
            let met = values.filter { higherIsBetter ? $0 >= target : $0 <= target }.count
            return fmt(median(values), 2) + "x" + "  (\(met)/\(values.count) rounds)"
        }
        output("")
        output(pad("test", 30) + pad("ours", 14) + pad("redis-benchmark", 18) + "ours/theirs: median of rounds (rounds meeting target)")
        for test in Self.throughputTests + ["GET -P 1"] {
            let pairs = figures.throughput[test] ?? []
            let label = test == "GET -P 1" ? "GET ops/s (-c 1 -P 1)" : "\(test) ops/s (-P \(options.pipeline))"
            output(pad(label, 30) + pad(fmt(median(pairs.map(\.ours))), 14) + pad(fmt(median(pairs.map(\.theirs))), 18)
                + ratios(pairs, target: 0.8, higherIsBetter: true))
        }
        // Ratios compare ours rounded the way redis-benchmark's figures are (see `redisBenchmarkBucketTop`):
        // exact figures against its rounded-up ones would flatter us by up to 7 us.
        func latencyRow(_ label: String, _ pairs: [Figures.Pair]) {
            let ours = median(pairs.map(\.ours))
            let shown = ours.map { fmt($0, 1) + " (" + fmt(Self.redisBenchmarkBucketTop($0), 0) + ")" } ?? "-"
            output(pad(label, 30) + pad(shown, 14) + pad(fmt(median(pairs.map(\.theirs))), 18)
                + ratios(pairs, ours: Self.redisBenchmarkBucketTop, target: 1.2, higherIsBetter: false))
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("GET latency \(p) (us)", figures.latency[p] ?? [])
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("  busy-poll off \(p) (us)", figures.sleeping[p] ?? [])
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("  bare NIO floor \(p) (us)", figures.floor[p] ?? [])
        }
        output("(throughput: higher is better, target ours/theirs >= 0.8; latency: lower is better, target <= 1.2)")
        output("(latency: redis-benchmark reports the top of an 8 us histogram bucket; in parentheses ours rounded the same way, which the ratio uses)")
        output("(ours: the caller's whole await, reply decoded; redis-benchmark: write to readable, before its read and parse; floor: write to channelRead)")
        output("(ours polls the socket for up to \(Int((options.replyBusyPoll.seconds * 1e6).rounded())) us after each write (replyBusyPoll); 'busy-poll off' and the floor sleep in epoll at once, as redis-benchmark does)")
    }

    /// The figure redis-benchmark would print for `micros`: its HDR histogram (lowest discernible value
    /// 10 us, 3 significant digits) has 8 us buckets up to 16 ms, then doubling, and reports a bucket's
    /// highest value. `--precision` only changes how many decimals its text output shows.
    static func redisBenchmarkBucketTop(_ micros: Double) -> Double {
        let value = Int(micros)  // it records whole microseconds
        var size = 8
        var limit = 2048 * 8
        while value >= limit {
            size *= 2
            limit *= 2
        }
        return Double(value / size * size + size - 1)
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

    // MARK: - Bare NIO floor

    /// Round-trip percentiles (us) of single GETs written by a plain NIO handler from `channelRead`,
    /// timed from `writeAndFlush` to the reply's `channelRead`, on a new connection on `elg`.
    private func nioFloorLatency(_ elg: MultiThreadedEventLoopGroup, port: Int, requests: Int) async throws -> [String: Double] {
        let eventLoop = elg.next()
        let done = eventLoop.makePromise(of: [Double].self)
        let channel = try await ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PingPongHandler(requests: requests, done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let samples: [Double]
        do {
            samples = try await done.futureResult.get().sorted()
            try? await channel.close()
        } catch {
            try? await channel.close()
            throw error
        }
        func percentile(_ p: Double) -> Double { nearestRankPercentile(samples, p) ?? .nan }
        return ["p50": percentile(50), "p95": percentile(95), "p99": percentile(99)]
    }

    // MARK: - redis-benchmark

    struct RedisBenchmarkResult {
        var rps: Double
        var p50: Double  // ms
        var p95: Double
        var p99: Double
    }

    /// Runs redis-benchmark with `--csv` and parses `"test","rps","avg","min","p50","p95","p99","max"`.
    private func redisBenchmark(port: Int, arguments: [String]) throws -> [String: RedisBenchmarkResult] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: options.redisBenchmarkPath)
        process.arguments = ["-h", "127.0.0.1", "-p", String(port), "--csv"] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var results: [String: RedisBenchmarkResult] = [:]
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            guard fields.count >= 7, let rps = Double(fields[1]), let p50 = Double(fields[4]), let p95 = Double(fields[5]), let p99 = Double(fields[6]) else { continue }
            // "RPUSH" and "LPOP" come out as e.g. "RPUSH"; "GET" as "GET".
            results[fields[0].split(separator: " ").first.map(String.init) ?? fields[0]] = RedisBenchmarkResult(rps: rps, p50: p50, p95: p95, p99: p99)
        }
        guard !results.isEmpty else {
            throw RedisServerError(message: "redis-benchmark printed no results (status \(process.terminationStatus))")
        }
        return results
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

/// Sends `GET key:__rand_int__`, and the next one from the reply's `channelRead`. Assumes each reply
/// arrives in one read, which holds for these few bytes on loopback.
private final class PingPongHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request = RedisCommand("GET", "key:__rand_int__").encoded
    private let clock = ContinuousClock()
    private var remaining: Int
    private var samples: [Double] = []
    private var sentAt: ContinuousClock.Instant
    private let done: EventLoopPromise<[Double]>

    init(requests: Int, done: EventLoopPromise<[Double]>) {
        self.remaining = requests
        self.done = done
        self.sentAt = clock.now
        samples.reserveCapacity(requests)
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        samples.append((clock.now - sentAt).seconds * 1_000_000)
        remaining -= 1
        if remaining > 0 {
            send(context)
        } else {
            done.succeed(samples)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }

    private func send(_ context: ChannelHandlerContext) {
        sentAt = clock.now
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
    }
}
