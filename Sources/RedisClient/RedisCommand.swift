import NIOCore
import RESP

/// One command, encoded as a RESP array of bulk strings at construction.
///
/// ```swift
/// RedisCommand("SET", "job:1", payload, "EX", 60)
/// RedisCommand("RPUSH", arguments: [key] + values)
/// ```
public struct RedisCommand: Sendable, CustomStringConvertible {
    /// The first word, as given (used in errors and logs).
    public let name: String
    /// `*<n>\r\n$..\r\n...` ready to be written.
    public let encoded: ByteBuffer
    /// Whether the server may hold the reply back indefinitely (BLPOP, BLMOVE, XREADGROUP ... BLOCK, WAIT, ...).
    /// ``RedisClient`` runs such commands on a dedicated connection without a default timeout.
    public let isBlocking: Bool

    public init(_ name: String, _ arguments: any RESPBulkStringEncodable...) {
        self.init(name, arguments: arguments)
    }

    public init(_ name: String, arguments: [any RESPBulkStringEncodable]) {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(32 + 16 * arguments.count + name.utf8.count)
        buffer.writeRESPLengthLine(UInt8(ascii: "*"), arguments.count + 1)
        name.writeRESPBulkString(into: &buffer)
        for argument in arguments { argument.writeRESPBulkString(into: &buffer) }
        self.name = name
        self.encoded = buffer
        // Classified once here so the send path does no string work per command.
        let upper = name.uppercased()
        self.isBlocking = Self.blocks(upper, arguments)
        self.isUnsupported = Self.unsupportedCommands.contains(upper)
        self.changesConnectionState = Self.stateChangingCommands.contains(upper)
        self.isReadOnly = Self.readOnlyCommands.contains(upper)
    }

    /// A read-only command: safe to run again when its connection died before the reply came.
    public let isReadOnly: Bool

    private static let readOnlyCommands: Set<String> = [
        "PING", "ECHO", "GET", "MGET", "EXISTS", "TTL", "PTTL", "TYPE", "STRLEN", "GETRANGE", "LRANGE", "LLEN", "LINDEX",
        "LPOS", "HGET", "HGETALL", "HMGET", "HEXISTS", "HLEN", "HKEYS", "HVALS", "HSTRLEN", "SMEMBERS", "SISMEMBER",
        "SMISMEMBER", "SCARD", "ZRANGE", "ZSCORE", "ZMSCORE", "ZCARD", "ZRANK", "ZREVRANK", "ZCOUNT", "XRANGE", "XREVRANGE",
        "XLEN", "DBSIZE", "INFO", "KEYS", "SCAN", "HSCAN", "SSCAN", "ZSCAN", "TIME", "LASTSAVE",
    ]

    /// SUBSCRIBE, MONITOR & co: refused, they turn the connection into a non request/reply stream
    /// (subscribe with ``RedisSubscription``, which has a connection of its own).
    let isUnsupported: Bool
    /// SELECT, WATCH, MULTI, CLIENT ...: a dedicated connection that ran one is not reused.
    let changesConnectionState: Bool

    public var description: String { name }

    private static let blockingCommands: Set<String> = [
        "BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
    ]

    private static func blocks(_ upper: String, _ arguments: [any RESPBulkStringEncodable]) -> Bool {
        if blockingCommands.contains(upper) { return true }
        if upper == "XREAD" || upper == "XREADGROUP" {
            return arguments.contains { ($0 as? String)?.uppercased() == "BLOCK" }
        }
        return false
    }

    /// Commands that would turn the connection into something other than request/reply.
    static let unsupportedCommands: Set<String> = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "SYNC", "PSYNC"]

    /// Commands after which a dedicated connection must not go back to the pool (its state changed).
    static let stateChangingCommands: Set<String> = [
        "SELECT", "WATCH", "MULTI", "AUTH", "HELLO", "CLIENT", "RESET", "READONLY", "READWRITE", "ASKING",
    ]
}
