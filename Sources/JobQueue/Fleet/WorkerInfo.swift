/// What a worker says about itself in Redis (``QueueConfiguration/workerInfoKey(for:)``), refreshed with its
/// heartbeat: who runs where, for `codebench-worker status` and the dashboard. Purely informative: no script reads it.
public struct WorkerInfo: Sendable, Equatable {
    /// The host name the worker runs on.
    public var host: String
    /// The VMM it chose (`qemu`, `firecracker`).
    public var vmm: String
    /// The worker process's id on its host.
    public var pid: Int
    /// The worker's software version.
    public var version: String
    /// When the process started, in milliseconds since the epoch (its own clock).
    public var startedAtMilliseconds: Int
    /// How many jobs it runs at once.
    public var concurrency: Int
    /// The worker's heartbeat TTL, so a reader can tell the heartbeat's age from its remaining TTL (set by the queue).
    public var heartbeatTTLMilliseconds: Int?

    public init(
        host: String, vmm: String, pid: Int, version: String, startedAtMilliseconds: Int, concurrency: Int,
        heartbeatTTLMilliseconds: Int? = nil
    ) {
        self.host = host
        self.vmm = vmm
        self.pid = pid
        self.version = version
        self.startedAtMilliseconds = startedAtMilliseconds
        self.concurrency = concurrency
        self.heartbeatTTLMilliseconds = heartbeatTTLMilliseconds
    }

    /// The hash's fields and values, as the heartbeat script writes them.
    func fields(heartbeatTTLMilliseconds: Int) -> [String] {
        [
            "host", host, "vmm", vmm, "pid", String(pid), "version", version, "started_at_ms", String(startedAtMilliseconds),
            "concurrency", String(concurrency), "heartbeat_ttl_ms", String(heartbeatTTLMilliseconds),
        ]
    }

    /// Reads the hash back; nil when it is gone (the worker died or predates the hash) or lacks a field.
    init?(hash: [String: String]) {
        guard let host = hash["host"], let vmm = hash["vmm"], let pid = hash["pid"].flatMap({ Int($0) }),
            let started = hash["started_at_ms"].flatMap({ Int($0) }), let concurrency = hash["concurrency"].flatMap({ Int($0) })
        else { return nil }
        self.init(
            host: host, vmm: vmm, pid: pid, version: hash["version"] ?? "", startedAtMilliseconds: started,
            concurrency: concurrency, heartbeatTTLMilliseconds: hash["heartbeat_ttl_ms"].flatMap { Int($0) })
    }
}
