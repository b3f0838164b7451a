import NIOCore
import RESP

/// `HELLO 3 [AUTH user pass] [SETNAME name]` (falling back to `AUTH` + RESP2 on servers without
/// HELLO), then `SELECT`, pipelined in one round trip.
enum RedisHandshake {
    struct Outcome {
        /// 2 or 3.
        var protocolVersion: Int
        /// The server's id for this connection (`CLIENT ID`), for `CLIENT UNBLOCK`.
        var clientID: Int?
    }

    static func run(on channel: any Channel, handler: RedisChannelHandler, configuration: RedisClientConfiguration) async throws -> Outcome {
        // A server that accepts the connection but never answers is a failed connect, not a slow command.
        let timeout = min(configuration.timeouts.connect, configuration.timeouts.command)
        let select = configuration.database != 0 ? RedisCommand("SELECT", configuration.database) : nil
        if configuration.preferRESP3 {
            var hello: [any RESPBulkStringEncodable] = ["3"]
            if let auth = configuration.authentication {
                hello += ["AUTH", auth.username ?? "default", auth.password]
            }
            if let name = configuration.clientName {
                hello += ["SETNAME", name]
            }
            let replies = try await RedisConnection.sendRaw(
                [RedisCommand("HELLO", arguments: hello)] + (select.map { [$0] } ?? []),
                handler: handler,
                timeout: timeout
            )
            if let message = replies[0].errorMessage {
                if message.hasPrefix("NOPROTO") || message.lowercased().contains("unknown command") {
                    return try await resp2(handler: handler, configuration: configuration, select: select)
                }
                throw failure(message, command: "HELLO", configuration: configuration)
            }
            if replies.count > 1, let message = replies[1].errorMessage {
                throw RedisError(code: .invalidConfiguration, command: "SELECT", message: "cannot select database \(configuration.database): \(message)")
            }
            let id = replies[0].pairs?.first { $0.key.string == "id" }?.value.int
            return Outcome(protocolVersion: 3, clientID: id)
        }
        return try await resp2(handler: handler, configuration: configuration, select: select)
    }

    private static func resp2(handler: RedisChannelHandler, configuration: RedisClientConfiguration, select: RedisCommand?) async throws -> Outcome {
        var commands: [RedisCommand] = []
        if let auth = configuration.authentication {
            commands.append(auth.username.map { RedisCommand("AUTH", $0, auth.password) } ?? RedisCommand("AUTH", auth.password))
        }
        if let name = configuration.clientName {
            commands.append(RedisCommand("CLIENT", "SETNAME", name))
        }
        if let select { commands.append(select) }
        commands.append(RedisCommand("CLIENT", "ID"))
        let replies = try await RedisConnection.sendRaw(
            commands, handler: handler, timeout: min(configuration.timeouts.connect, configuration.timeouts.command)
        )
        for (command, reply) in zip(commands, replies).dropLast() {
            if let message = reply.errorMessage {
                throw failure(message, command: command.name, configuration: configuration)
            }
        }
        return Outcome(protocolVersion: 2, clientID: replies.last?.int)
    }

    private static func failure(_ message: String, command: String, configuration: RedisClientConfiguration) -> RedisError {
        let user = configuration.authentication?.username ?? "default"
        if message.hasPrefix("WRONGPASS") || message.hasPrefix("NOAUTH") || message.contains("invalid password")
            || message.contains("without any password configured") {
            let what = configuration.authentication == nil
                ? "the server requires a password and none was configured"
                : "authentication failed for user '\(user)'"
            return RedisError(code: .authenticationFailed, command: command, message: "\(what): \(message)")
        }
        if command == "SELECT" {
            return RedisError(code: .invalidConfiguration, command: command, message: "cannot select database \(configuration.database): \(message)")
        }
        return RedisError(code: .connectionFailed, command: command, message: "handshake failed: \(message)")
    }
}
