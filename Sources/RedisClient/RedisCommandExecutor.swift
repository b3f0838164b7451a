import NIOCore
import RESP

/// Anything that runs commands: the ``RedisClient`` (shared connection, dedicated ones for blocking
/// commands) or a single ``RedisConnection``. All conveniences are built on the two requirements.
///
/// Errors are always ``RedisError``; a server error reply becomes one with code
/// ``RedisError/Code/serverError`` naming the command.
public protocol RedisCommandExecutor: Sendable {
    /// Runs one command and returns its reply.
    /// - Parameter timeout: nil for the configured default (none for blocking commands). When it
    ///   expires the connection is closed and the command fails with ``RedisError/Code/timeout``.
    func send(_ command: RedisCommand, timeout: Duration?) async throws -> RESPToken

    /// Writes all commands at once and returns every reply in order. Error replies are returned
    /// as tokens (``RESPToken/isError``), not thrown; only connection-level failures throw.
    func sendPipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPToken]
}

extension RedisCommandExecutor {
    /// Runs one command with the default timeout.
    @inlinable
    public func send(_ command: RedisCommand) async throws -> RESPToken {
        try await send(command, timeout: nil)
    }

    /// `try await redis.send("RPUSH", "queue", payload)`.
    @inlinable
    public func send(_ name: String, _ arguments: any RESPBulkStringEncodable...) async throws -> RESPToken {
        try await send(RedisCommand(name, arguments: arguments), timeout: nil)
    }

    /// Runs one command and decodes the reply: `try await redis.send(RedisCommand("GET", key), as: String?.self)`.
    public func send<T: RESPTokenDecodable>(_ command: RedisCommand, as type: T.Type, timeout: Duration? = nil) async throws -> T {
        let token = try await send(command, timeout: timeout)
        do {
            return try token.decode(as: T.self)
        } catch {
            throw RedisError(code: .decodingFailed, command: command.name, message: error.description, underlying: error)
        }
    }

    /// Pipelines the commands in one write; each reply or server error in order.
    public func pipeline(_ commands: [RedisCommand], timeout: Duration? = nil) async throws -> [Result<RESPToken, RedisError>] {
        let replies = try await sendPipeline(commands, timeout: timeout)
        return zip(commands, replies).map { command, reply in
            reply.isError ? .failure(.server(reply, command: command.name)) : .success(reply)
        }
    }

    /// `MULTI`, the commands, `EXEC`, written at once so nothing can interleave. Returns each
    /// command's result; throws ``RedisError/Code/transactionAborted`` when the server discarded
    /// the transaction (a command was rejected while queueing, or a WATCHed key changed).
    public func transaction(_ commands: [RedisCommand], timeout: Duration? = nil) async throws -> [Result<RESPToken, RedisError>] {
        let replies = try await sendPipeline([RedisCommand("MULTI")] + commands + [RedisCommand("EXEC")], timeout: timeout)
        let exec = replies[replies.count - 1]
        if exec.isError {
            let queueErrors = zip(commands, replies.dropFirst()).compactMap { command, reply in
                reply.errorMessage.map { "\(command.name): \($0)" }
            }
            throw RedisError(code: .transactionAborted, command: "EXEC",
                             message: ([exec.errorMessage ?? "EXECABORT"] + queueErrors).joined(separator: "; "))
        }
        if replies[0].isError {
            throw RedisError.server(replies[0], command: "MULTI")
        }
        guard let results = exec.array else {
            // Null EXEC reply: a WATCHed key changed.
            throw RedisError(code: .transactionAborted, command: "EXEC", message: "transaction aborted: a watched key was modified")
        }
        return zip(commands, results).map { command, reply in
            reply.isError ? .failure(.server(reply, command: command.name)) : .success(reply)
        }
    }

    /// Runs a Lua script by `EVALSHA`, sending the source with `EVAL` only when the server does not
    /// have it cached (`NOSCRIPT`, e.g. after a restart).
    public func evalScript(
        _ script: RedisScript,
        keys: [String] = [],
        arguments: [any RESPBulkStringEncodable] = [],
        timeout: Duration? = nil
    ) async throws -> RESPToken {
        let tail: [any RESPBulkStringEncodable] = [keys.count] + keys + arguments
        do {
            return try await send(RedisCommand("EVALSHA", arguments: [script.sha1] + tail), timeout: timeout)
        } catch let error as RedisError where error.serverErrorPrefix == "NOSCRIPT" {
            return try await send(RedisCommand("EVAL", arguments: [script.source] + tail), timeout: timeout)
        }
    }
}
