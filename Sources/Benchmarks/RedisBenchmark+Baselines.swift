import Foundation
import NIOCore
import NIOPosix
import RedisClient
import TestSupport

/// What our client is measured against: redis-benchmark itself, and a bare NIO ping-pong.
extension RedisBenchmark {
    // MARK: - Bare NIO floor

    /// Round-trip percentiles (us) of single GETs written by a plain NIO handler from `channelRead`,
    /// timed from `writeAndFlush` to the reply's `channelRead`, on a new connection on `elg`.
    func nioFloorLatency(_ elg: MultiThreadedEventLoopGroup, port: Int, requests: Int) async throws -> [String: Double] {
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
    func redisBenchmark(port: Int, arguments: [String]) throws -> [String: RedisBenchmarkResult] {
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
