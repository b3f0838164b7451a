/// What is said on a freshly connected agent socket before agent frames flow.
public enum AgentHandshake: Sendable, Hashable {
    /// The socket is the agent channel itself (QEMU's virtio-serial chardev).
    case none
    /// Firecracker's host-side vsock multiplexer: the host writes `CONNECT <port>\n` and Firecracker
    /// answers `OK <hostport>\n` once a guest process listens on `port` (it closes the connection
    /// when nothing listens yet, which the connector treats as "try again").
    case firecrackerVsock(port: UInt32)
}
