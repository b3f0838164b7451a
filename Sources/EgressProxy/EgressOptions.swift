/// How one proxy process behaves. Every field has the production default; the command line
/// (``EgressArguments``) sets them, tests set them directly.
public struct EgressOptions: Equatable, Sendable {
    /// Destination ports a guest may CONNECT to. Default: 443 and 80.
    public var allowedPorts: Set<UInt16> = [443, 80]
    /// Addresses allowed although the policy denies them: the operator's exceptions (an internal package
    /// mirror, the gateway of a network that intercepts TLS) and tests' local servers. Every guest with
    /// network can reach each of them on every allowed port, so never the host's own or a shared network.
    public var allowedAddresses: Set<IPAddress> = []
    /// How long the client has to send a complete request head. Default 10 s.
    public var headTimeout: Duration = .seconds(10)
    /// Largest request head accepted, through its empty line (64 bytes to 64 KiB). Default 8 KiB.
    public var maxHeadBytes: Int = 8 * 1024
    /// Bounds name resolution, and separately connecting (all candidate addresses together). Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// A tunnel in which no byte moved for this long is closed. Default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// Bytes relayed in both directions together after which the tunnel is closed. Default 256 MiB.
    public var maxBytes: Int = 256 * 1024 * 1024
    /// Directory of the slot files that cap concurrent connections (one directory per VM). Nil: no cap.
    public var slotsDirectory: String? = nil
    /// Concurrent connections allowed when `slotsDirectory` is set. Default 16.
    public var maxConnections: Int = 16
    /// File to append one line per connection to. Nil: no log.
    public var logFile: String? = nil
    /// The log file is not written past this size. Default 64 KiB.
    public var maxLogBytes: Int = 64 * 1024

    public init() {}
}
