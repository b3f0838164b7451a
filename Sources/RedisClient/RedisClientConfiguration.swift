import RESP

/// Everything a ``RedisClient`` needs; every field but the endpoint has a default.
///
/// ```swift
/// var config = try RedisClientConfiguration(url: "redis://worker:secret@127.0.0.1:6379/2")
/// config.timeouts.command = .seconds(2)
/// ```
public struct RedisClientConfiguration: Sendable {
    /// Where the server is.
    public enum Endpoint: Hashable, Sendable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    /// Credentials for `HELLO 3 AUTH` / `AUTH`. A nil username means the `default` user.
    /// Printing it (or a configuration holding it) never shows the password.
    public struct Authentication: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        public var username: String?
        public var password: String
        public init(username: String? = nil, password: String) {
            self.username = username
            self.password = password
        }

        public var description: String { "Authentication(username: \(username ?? "default"), password: <redacted>)" }
        public var debugDescription: String { description }
        public var customMirror: Mirror { Mirror(self, children: ["username": username as Any, "password": "<redacted>"]) }
    }

    /// TLS for `rediss://`.
    public struct TLS: Sendable {
        public enum Verification: Sendable {
            /// Certificate chain and host name (the default).
            case full
            /// Chain only: for servers reached by an address their certificate does not name.
            case noHostnameVerification
            /// Accept any certificate. Tests only.
            case none
        }
        public var verification: Verification
        /// PEM file of CA certificates to trust instead of the system store.
        public var caCertificateFile: String?
        /// PEM client certificate and key, for servers with `tls-auth-clients yes`.
        public var clientCertificateFile: String?
        public var clientKeyFile: String?
        /// SNI / verification name; defaults to the endpoint host when that is a name, not an IP.
        public var serverHostname: String?

        public init(
            verification: Verification = .full,
            caCertificateFile: String? = nil,
            clientCertificateFile: String? = nil,
            clientKeyFile: String? = nil,
            serverHostname: String? = nil
        ) {
            self.verification = verification
            self.caCertificateFile = caCertificateFile
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
            self.serverHostname = serverHostname
        }
    }

    public struct Timeouts: Sendable {
        /// TCP (and TLS) connect.
        public var connect: Duration
        /// Default for each non-blocking command and for the handshake. Blocking commands
        /// (``RedisCommand/isBlocking``) get no default timeout: their own argument bounds them.
        public var command: Duration
        public init(connect: Duration = .seconds(5), command: Duration = .seconds(10)) {
            self.connect = connect
            self.command = command
        }
    }

    /// Exponential backoff with jitter between connection attempts.
    public struct Reconnect: Sendable {
        /// Attempts per connection request before failing with ``RedisError/Code/connectionFailed``.
        public var maxAttempts: Int
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        public var multiplier: Double
        /// Each delay is scaled by a random factor in `1 ± jitter`.
        public var jitter: Double
        public init(
            maxAttempts: Int = 8,
            initialBackoff: Duration = .milliseconds(50),
            maxBackoff: Duration = .seconds(2),
            multiplier: Double = 2,
            jitter: Double = 0.2
        ) {
            self.maxAttempts = maxAttempts
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.multiplier = multiplier
            self.jitter = jitter
        }

        /// The delay before attempt `attempt + 1` (attempt counts from 0).
        public func backoff(afterAttempt attempt: Int) -> Duration {
            let base = initialBackoff * pow(multiplier, Double(attempt))
            let capped = base > maxBackoff ? maxBackoff : base
            let factor = 1 + Double.random(in: -jitter...jitter)
            return capped * max(0, factor)
        }

        private func pow(_ x: Double, _ n: Double) -> Double {
            var result = 1.0
            for _ in 0..<Int(min(n, 64)) { result *= x }
            return result
        }
    }

    public var endpoint: Endpoint
    /// Set for `rediss://`.
    public var tls: TLS?
    public var authentication: Authentication?
    /// Selected during the handshake when not 0.
    public var database: Int
    /// `CLIENT SETNAME`, shown in `CLIENT LIST`.
    public var clientName: String?
    /// Ask for RESP3 with `HELLO 3` (falls back to RESP2 on servers without HELLO).
    public var preferRESP3: Bool
    public var timeouts: Timeouts
    public var reconnect: Reconnect
    /// Limits on what the server may send.
    public var decodingLimits: RESPDecodingLimits
    /// Idle dedicated connections kept for reuse by blocking commands and ``RedisClient/withDedicatedConnection(_:)``.
    public var maxIdleDedicatedConnections: Int
    /// After writing a request that expects a prompt reply, poll the socket for up to this long before
    /// the event loop sleeps (TCP only; adaptive, so a server farther away than this costs almost
    /// nothing). On VMs where a halted CPU is slow to wake this is most of a round trip: a loopback GET
    /// took about 20 µs instead of 55–70. `.zero` turns it off. See `ReplyBusyPoller` for the details.
    public var replyBusyPoll: Duration

    public init(
        endpoint: Endpoint,
        tls: TLS? = nil,
        authentication: Authentication? = nil,
        database: Int = 0,
        clientName: String? = nil,
        preferRESP3: Bool = true,
        timeouts: Timeouts = Timeouts(),
        reconnect: Reconnect = Reconnect(),
        decodingLimits: RESPDecodingLimits = .default,
        maxIdleDedicatedConnections: Int = 8,
        replyBusyPoll: Duration = .microseconds(50)
    ) {
        self.endpoint = endpoint
        self.tls = tls
        self.authentication = authentication
        self.database = database
        self.clientName = clientName
        self.preferRESP3 = preferRESP3
        self.timeouts = timeouts
        self.reconnect = reconnect
        self.decodingLimits = decodingLimits
        self.maxIdleDedicatedConnections = maxIdleDedicatedConnections
        self.replyBusyPoll = replyBusyPoll
    }

    /// Parses `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS with full verification;
    /// adjust ``tls`` afterwards for a private CA), `unix:///path/to.sock` or `redis+unix:///path`
    /// (with optional `?db=N&user=U&password=P`). Percent-escapes in user and password are decoded.
    /// `rediss://` URLs also take `ca=/path`, `cert=/path`, `key=/path`, `sni=name` and
    /// `verify=full|no-hostname|none`.
    public init(url: String) throws(RedisError) {
        self = try RedisURLParser.parse(url)
    }
}
