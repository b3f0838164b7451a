import Foundation
import Logging
import NIOCore
import NIOPosix
import RESP
import RedisClient
import TestSupport

/// `codebench-worker bench redis`: our client against `redis-benchmark` on the same freshly started
/// `redis-server`, with matching parameters (connections, pipeline depth, requests, payload),
/// each test run by ours and then by redis-benchmark, for several rounds; prints medians and ratios.
///
/// The latency test also measures a bare SwiftNIO ping-pong handler (no client, no async/await) on
/// the same event loop: the floor any NIO-based client can reach on this machine, so that the gap to
/// redis-benchmark can be split into our client's overhead and what NIO and the host cost.
public struct RedisBenchmark: Sendable {
    public struct Options: Sendable {
        /// Requests per throughput test and round.
        public var requests = 200_000
        /// Pipeline depth for the throughput tests (`-P`).
        public var pipeline = 16
        /// Connections for the throughput tests (`-c`).
        public var clients = 1
        /// Requests for the latency test (`-c 1 -P 1`).
        public var latencyRequests = 50_000
        /// Value size in bytes (`-d`).
        public var valueSize = 3
        /// Rounds of (ours, redis-benchmark); medians are reported.
        public var rounds = 3
        public var redisBenchmarkPath = "/usr/bin/redis-benchmark"
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

    /// One measured figure per test: throughput in ops/s or latency percentiles in microseconds.
    struct Figures {
        var throughput: [String: [Double]] = [:]
        var latency: [String: [Double]] = [:]  // "p50", "p95", "p99"
        /// The bare NIO ping-pong's percentiles, same keys as `latency`.
        var floor: [String: [Double]] = [:]
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
            let client = RedisClient(configuration: configuration, eventLoopGroup: elg, logger: logger)
            defer { client.close() }

            output("redis benchmark: redis-server \(server.url), \(options.rounds) rounds alternating ours and redis-benchmark (latency runs rotate order); medians")
            output("our client runs on \(options.pinToEventLoop ? "its event loop (EventLoopTaskExecutor)" : "the global concurrent executor")")
            output("throughput: -n \(options.requests) -c \(options.clients) -P \(options.pipeline) -d \(options.valueSize); latency: -n \(options.latencyRequests) -c 1 -P 1 GET")
            // Warm-up: connections, page faults, the server's dict growth.
            _ = try await onOurExecutor(client) { try await throughput(client, command: "SET", requests: 20_000) }
            var ours = Figures()
            var theirs = Figures()
            for round in 1...options.rounds {
                // Each test runs ours then redis-benchmark back to back, so both see the same machine load.
                for test in Self.throughputTests {
                    let opsPerSecond = try await onOurExecutor(client) {
                        try await throughput(client, command: test, requests: options.requests)
                    }
                    ours.throughput[test, default: []].append(opsPerSecond)
                    let pipelined = try redisBenchmark(port: server.port, arguments: [
                        "-c", String(options.clients), "-P", String(options.pipeline), "-n", String(options.requests),
                        "-d", String(options.valueSize), "-t", test.lowercased(),
                    ])
                    if let rps = pipelined[test]?.rps { theirs.throughput[test, default: []].append(rps) }
                }
                // Settle after the pipelined tests (untimed), then rotate the three latency runs across rounds:
                // on this kind of host the scheduler's placement after a busy phase shifts whichever runs first.
                _ = try await onOurExecutor(client) { try await latency(client, requests: options.latencyRequests / 10) }
                for step in 0..<3 {
                    switch (round + step) % 3 {
                    case 0:
                        var measured = try await onOurExecutor(client) { try await latency(client, requests: options.latencyRequests) }
                        ours.throughput["GET -P 1", default: []] += measured.removeValue(forKey: "ops") ?? []
                        ours.latency.merge(measured) { $0 + $1 }
                    case 1:
                        let floor = try await nioFloorLatency(elg, port: server.port, requests: options.latencyRequests)
                        ours.floor.merge(floor) { $0 + $1 }
                    default:
                        let single = try redisBenchmark(port: server.port, arguments: [
                            "-c", "1", "-P", "1", "-n", String(options.latencyRequests), "-d", String(options.valueSize), "-t", "get",
                        ])
                        if let get = single["GET"] {
                            theirs.latency["p50", default: []].append(get.p50 * 1000)
                            theirs.latency["p95", default: []].append(get.p95 * 1000)
                            theirs.latency["p99", default: []].append(get.p99 * 1000)
                            theirs.throughput["GET -P 1", default: []].append(get.rps)
                        }
                    }
                }
                output("  round \(round) done")
            }
            report(ours: ours, theirs: theirs)
        }
    }

    /// Runs our side on the client's event loop when pinned (redis-benchmark, which blocks, runs outside).
    private func onOurExecutor<T: Sendable>(_ client: RedisClient, _ body: () async throws -> T) async throws -> T {
        guard options.pinToEventLoop else { return try await body() }
        return try await withTaskExecutorPreference(client.executor) { try await body() }
    }

    private func report(ours: Figures, theirs: Figures) {
        func median(_ values: [Double]?) -> Double? {
            guard let values, !values.isEmpty else { return nil }
            let sorted = values.sorted()
            return sorted[sorted.count / 2]
        }
        func fmt(_ value: Double?, _ decimals: Int = 0) -> String {
            value.map { String(format: "%.\(decimals)f", $0) } ?? "-"
        }
        let pad: (String, Int) -> String = { text, width in text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        output("")
        output(pad("test", 30) + pad("ours", 14) + pad("redis-benchmark", 18) + "ours/theirs")
        for test in Self.throughputTests {
            let a = median(ours.throughput[test])
            let b = median(theirs.throughput[test])
            let ratio = a.flatMap { a in b.map { a / $0 } }
            output(pad("\(test) ops/s (-P \(options.pipeline))", 30) + pad(fmt(a), 14) + pad(fmt(b), 18) + fmt(ratio, 2) + "x")
        }
        let a = median(ours.throughput["GET -P 1"])
        let b = median(theirs.throughput["GET -P 1"])
        output(pad("GET ops/s (-c 1 -P 1)", 30) + pad(fmt(a), 14) + pad(fmt(b), 18) + fmt(a.flatMap { a in b.map { a / $0 } }, 2) + "x")
        // Ratios compare ours rounded the way redis-benchmark's figures are (see `redisBenchmarkBucketTop`):
        // exact figures against its rounded-up ones would flatter us by up to 7 us.
        func latencyRow(_ label: String, _ ours: Double?, _ theirs: Double?) {
            let bucketed = ours.map(Self.redisBenchmarkBucketTop)
            let shown = ours.map { fmt($0, 1) + " (" + fmt(bucketed, 0) + ")" } ?? "-"
            output(pad(label, 30) + pad(shown, 14) + pad(fmt(theirs, 0), 18) + fmt(bucketed.flatMap { a in theirs.map { a / $0 } }, 2) + "x")
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("GET latency \(p) (us)", median(ours.latency[p]), median(theirs.latency[p]))
        }
        for p in ["p50", "p95", "p99"] {
            latencyRow("  bare NIO floor \(p) (us)", median(ours.floor[p]), median(theirs.latency[p]))
        }
        output("(throughput: higher is better, target ours/theirs >= 0.8; latency: lower is better, target <= 1.2)")
        output("(latency: redis-benchmark reports the top of an 8 us histogram bucket; in parentheses ours rounded the same way, which the ratio uses)")
        output("(ours: the caller's whole await, reply decoded; redis-benchmark: write to readable, before its read and parse; floor: write to channelRead)")
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
    private func latency(_ client: RedisClient, requests: Int) async throws -> [String: [Double]] {
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
        return [
            "p50": [percentile(50)], "p95": [percentile(95)], "p99": [percentile(99)],
            "ops": [Double(requests) / elapsed.seconds],
        ]
    }

    // MARK: - Bare NIO floor

    /// Round-trip percentiles (us) of single GETs written by a plain NIO handler from `channelRead`,
    /// timed from `writeAndFlush` to the reply's `channelRead`, on a new connection on `elg`.
    private func nioFloorLatency(_ elg: MultiThreadedEventLoopGroup, port: Int, requests: Int) async throws -> [String: [Double]] {
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
        return ["p50": [percentile(50)], "p95": [percentile(95)], "p99": [percentile(99)]]
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
