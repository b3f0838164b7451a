import RESP
import RedisClient

// The only place the queue talks to the Redis client.
extension JobQueue {
    func command(_ name: String, _ arguments: any RESPBulkStringEncodable...) async throws -> RESPValue {
        RESPValue(try await client.send(RedisCommand(name, arguments: arguments)))
    }

    /// Blocking commands run on a dedicated connection, so they never hold up the statuses and scripts of other
    /// tasks sharing the client.
    func blockingCommand(_ name: String, _ arguments: any RESPBulkStringEncodable...) async throws -> RESPValue {
        let command = RedisCommand(name, arguments: arguments)
        return try await client.withDedicatedConnection { connection in
            RESPValue(try await connection.send(command))
        }
    }

    func integer(script: RedisScript, keys: [String], arguments: [any RESPBulkStringEncodable]) async throws -> Int {
        try RESPValue(try await client.evalScript(script, keys: keys, arguments: arguments)).integer()
    }

    func integers(script: RedisScript, keys: [String], arguments: [any RESPBulkStringEncodable]) async throws -> [Int] {
        try RESPValue(try await client.evalScript(script, keys: keys, arguments: arguments)).elements().map { try $0.integer() }
    }
}
