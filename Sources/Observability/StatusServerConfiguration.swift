/// Where the status server listens and how much it lets a client take.
public struct StatusServerConfiguration: Sendable, Equatable {
    public var host: String
    /// 0 picks a free port; ``StatusServer/port`` tells which.
    public var port: Int
    /// A request head (request line and headers) above this is refused with 431 and the connection closed.
    /// A scraper's request is a few hundred bytes; this leaves room for proxies' headers.
    public var maxHeadBytes: Int = 8192
    /// A connection that sends nothing for this long is closed, so idle keep-alive connections and
    /// half-sent requests do not hold sockets forever.
    public var idleTimeout: Duration = .seconds(30)
    /// Connections above this are closed on accept; a scraper needs one or two.
    public var maxConnections: Int = 32

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `127.0.0.1` (any 127.x), `::1`, `localhost`: where only this host's processes (and browsers) can connect.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}
