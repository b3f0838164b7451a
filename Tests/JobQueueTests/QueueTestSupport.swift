import Foundation
import Logging
import RESP
import RedisClient
import TestSupport
import Testing

@testable import JobQueue

/// A fresh redis-server and a client for one test; both are gone when `body` returns or throws.
func withQueueRedis(
    _ options: RedisServerOptions = RedisServerOptions(), _ body: (QueueTestRedis) async throws -> Void
) async throws {
    try await withRedisServer(options) { server in
        let client = RedisClient(configuration: try RedisClientConfiguration(url: server.url), logger: Logger(label: "test.redis"))
        defer { client.close() }
        try await body(QueueTestRedis(server: server, client: client))
    }
}

struct QueueTestRedis: Sendable {
    let server: RedisServer
    let client: RedisClient

    func queue(_ workerID: String, _ configure: (inout QueueConfiguration) -> Void = { _ in }) -> JobQueue {
        var configuration = QueueConfiguration(workerID: workerID)
        configure(&configuration)
        var logger = Logger(label: "test.queue")
        logger.logLevel = .warning
        return JobQueue(client: client, configuration: configuration, logger: logger)
    }

    /// A worker whose heartbeat expires quickly; it "dies" simply by never heartbeating again.
    func mortalQueue(_ workerID: String) -> JobQueue {
        queue(workerID) { $0.heartbeatTTL = .seconds(2) }
    }

    /// Waits until Redis itself expired the worker's heartbeat (no fixed sleep: the machine may be loaded).
    func waitForDeath(of worker: JobQueue) async throws {
        let key = worker.configuration.heartbeatKey(for: worker.configuration.workerID)
        let deadline = ContinuousClock.now + .seconds(10)
        while try await send("EXISTS", key) == .integer(1) {
            guard ContinuousClock.now < deadline else { throw QueueTestFailure("\(key) never expired") }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    @discardableResult
    func send(_ name: String, _ arguments: any RESPBulkStringEncodable...) async throws -> QueueTestReply {
        QueueTestReply(token: try await client.send(RedisCommand(name, arguments: arguments)))
    }

    func list(_ key: String) async throws -> [String] {
        try await send("LRANGE", key, 0, -1).strings()
    }

    func push(_ payloads: String..., to key: String = "jobs") async throws {
        for payload in payloads { try await send("RPUSH", key, payload) }
    }
}

/// A reply as the tests read it: through RESP's decoder (`RESPTokenDecodable`), the one way the queue reads
/// its own replies; `==` compares it with a literal reply (`.integer(1)`).
struct QueueTestReply {
    let token: RESPToken

    func string() throws -> String { try token.decode(as: String.self) }
    func integer() throws -> Int { try token.decode(as: Int.self) }
    func strings() throws -> [String] { try token.decode(as: [String].self) }

    static func == (reply: QueueTestReply, expected: RESPValue) -> Bool { RESPValue(reply.token) == expected }
}

/// Parses the trailing result JSON of a terminal push.
func decodeObject(_ json: String) throws -> [String: JSONValue] {
    guard case .object(let object) = try JobJSONReader.read(Array(json.utf8)).value else {
        throw QueueTestFailure("not a JSON object: \(json)")
    }
    return object
}

struct QueueTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real `redis-cli SUBSCRIBE` process writing what it receives to a file: the client under test
/// deliberately refuses SUBSCRIBE, and a separate process is the most honest subscriber anyway.
final class CLISubscriber {
    let process: Process
    let output: String

    init(port: Int, channels: [String]) async throws {
        output = NSTemporaryDirectory() + "/jobs-subscriber-\(UUID().uuidString).txt"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-p", String(port), "SUBSCRIBE"] + channels
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardOutput = handle
        try process.run()
        try? handle.close()
        do {
            // Published messages are only delivered once the subscription is confirmed.
            _ = try await waitForLines { lines in lines.filter { $0 == "subscribe" }.count == channels.count }
        } catch {
            await stop()
            throw error
        }
    }

    func lines() -> [String] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The payloads of the `message` pushes received so far (raw output: type, channel, payload on three lines).
    func messages() -> [String] {
        let lines = lines()
        return lines.indices.compactMap { index in
            lines[index] == "message" && index + 2 < lines.count ? lines[index + 2] : nil
        }
    }

    func waitForMessages(_ count: Int) async throws -> [String] {
        _ = try await waitForLines { _ in self.messages().count >= count }
        return messages()
    }

    private func waitForLines(_ done: ([String]) -> Bool) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let current = lines()
            if done(current) { return current }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw QueueTestFailure("redis-cli subscriber timed out; output: \(lines())")
    }

    /// SIGKILL, because a child of the test process inherits a signal mask that blocks SIGTERM; then polls,
    /// because `waitUntilExit` spins a run loop on a cooperative thread.
    func stop() async {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        try? FileManager.default.removeItem(atPath: output)
    }
}

func withSubscriber<T>(
    _ redis: QueueTestRedis, channels: [String], _ body: (CLISubscriber) async throws -> T
) async throws -> T {
    let subscriber = try await CLISubscriber(port: redis.server.port, channels: channels)
    do {
        let result = try await body(subscriber)
        await subscriber.stop()
        return result
    } catch {
        await subscriber.stop()
        throw error
    }
}
