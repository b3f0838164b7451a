import RESP
import RedisClient

// The only place the queue talks to the Redis client. Every reply is read one way, with RESP's own
// decoder (`RESPTokenDecodable`), into the Swift type the caller names; a reply of another shape is a
// ``JobQueueError/Code/unexpectedReply`` naming the command.
extension JobQueue {
    func command<Reply: RESPTokenDecodable>(
        _ name: String, _ arguments: any RESPBulkStringEncodable..., as type: Reply.Type
    ) async throws -> Reply {
        try Self.decode(try await client.send(RedisCommand(name, arguments: arguments)), as: type, from: name)
    }

    /// Blocking commands run on a dedicated connection, so they never hold up the statuses and scripts of other
    /// tasks sharing the client.
    func blockingCommand<Reply: RESPTokenDecodable & Sendable>(
        _ name: String, _ arguments: any RESPBulkStringEncodable..., as type: Reply.Type
    ) async throws -> Reply {
        let command = RedisCommand(name, arguments: arguments)
        return try await client.withDedicatedConnection { connection in
            try Self.decode(try await connection.send(command), as: type, from: name)
        }
    }

    func integer(script: RedisScript, keys: [String], arguments: [any RESPBulkStringEncodable]) async throws -> Int {
        try Self.decode(try await client.evalScript(script, keys: keys, arguments: arguments), as: Int.self, from: "EVALSHA")
    }

    func integers(script: RedisScript, keys: [String], arguments: [any RESPBulkStringEncodable]) async throws -> [Int] {
        try Self.decode(try await client.evalScript(script, keys: keys, arguments: arguments), as: [Int].self, from: "EVALSHA")
    }

    static func decode<Reply: RESPTokenDecodable>(
        _ token: RESPToken, as type: Reply.Type, from command: String
    ) throws(JobQueueError) -> Reply {
        do {
            return try token.decode(as: type)
        } catch {
            throw JobQueueError(.unexpectedReply, "\(command): \(error)")
        }
    }
}
