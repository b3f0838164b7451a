import FoundationEssentials

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Redis key names and timings of the job queue. Every field has a default compatible with the original Go worker.
///
/// Derived keys (all under ``namespace``): `<ns>:processing:<workerID>`, `<ns>:worker:<workerID>:alive`,
/// `<ns>:workers`, `<ns>:terminal:<id>`, `<ns>:deliveries`, `<ns>:reaper:lock`, `<ns>:ids`, `<ns>:inflight:<id>`,
/// `<ns>:owned:<id>`, `<ns>:worker:<workerID>:info`, `<ns>:dead-records`, `<ns>:cancel:<id>`; and the pub/sub channel
/// `<ns>:cancel`.
public struct QueueConfiguration: Sendable {
    /// The lists platforms `RPUSH` jobs onto, highest priority first: a job is claimed from a list only while
    /// every list before it is empty (docs/reliability.md, "Priorities"). Today's single `jobs` by default.
    public var intakeLists: [String]
    /// The first of ``intakeLists``: where jobs given back (drain, orphaned claims, dead workers) go, at the
    /// head. Setting it makes it the only intake list.
    public var intakeList: String {
        get { intakeLists.first ?? "jobs" }
        set { intakeLists = [newValue] }
    }
    /// With several intake lists, an idle worker blocks on the first one for at most this long before it
    /// looks at the others again: the longest a job pushed onto a later list waits for an idle worker.
    public var intakePollInterval: Duration = .milliseconds(250)
    /// Where refused payloads whose id could not be read go (JSON objects: payload prefix, reason).
    public var invalidList: String
    /// Where payloads go after ``maxDeliveries`` deliveries that all ended with their worker's death.
    public var deadLetterList: String
    /// Prefix of the bookkeeping keys (processing lists, heartbeats, markers).
    public var namespace: String
    /// Status lists are `<statusKeyPrefix><id>`: "" as the original worker, "worker_job_status_" for the later API.
    public var statusKeyPrefix: String
    /// How long a status list (and the job's terminal marker) lives after its last push.
    public var statusTTL: Duration
    /// Each status push is also PUBLISHed on `<eventsChannelPrefix><id>`.
    public var eventsChannelPrefix: String
    /// Names this worker's processing list and heartbeat; unique per process.
    public var workerID: String
    /// A worker whose heartbeat key is older than this is dead and its jobs are returned to the intake.
    public var heartbeatTTL: Duration
    /// A job delivered this many times, each ending with its worker's death, is dead-lettered.
    public var maxDeliveries: Int
    /// How long the reaper lock is held at most (it is released as soon as a pass ends).
    public var reaperLockTTL: Duration
    /// How often each worker runs a reaper pass (only the holder of the reaper lock acts).
    public var reaperInterval: Duration
    /// How often the reaper also SCANs for processing lists of unregistered workers (costly on a large keyspace).
    public var orphanScanInterval: Duration
    /// The invalid list is trimmed to its newest entries so a flood of garbage cannot fill Redis.
    public var invalidListMaxLength: Int
    /// Larger payloads are refused (their id is still read when possible, to report `failed` to it).
    public var maximumPayloadBytes: Int
    /// The languages jobs may name (the worker sets its image's); a job naming another is invalid.
    public var languages: JobLanguageCatalog = .classic
    /// A job with `"stream": true` has its output published on the Redis stream `<outputKeyPrefix><id>`.
    public var outputKeyPrefix = "codebench:output:"
    /// `XADD … MAXLEN ~` of an output stream: entries beyond it (the oldest) are trimmed. The chunks of a job
    /// come at most every 100 ms per stream, so this keeps about 8 minutes of a job printing without pause.
    public var outputStreamMaxLength = 10_000

    public init(
        intakeList: String = "jobs",
        invalidList: String = "jobs:invalid",
        deadLetterList: String = "jobs:dead",
        namespace: String = "jobs",
        statusKeyPrefix: String = "",
        statusTTL: Duration = .seconds(24 * 3600),
        eventsChannelPrefix: String = "codebench:events:",
        workerID: String = QueueConfiguration.defaultWorkerID(),
        heartbeatTTL: Duration = .seconds(10),
        maxDeliveries: Int = 3,
        reaperLockTTL: Duration = .seconds(30),
        reaperInterval: Duration = .seconds(5),
        orphanScanInterval: Duration = .seconds(60),
        invalidListMaxLength: Int = 10_000,
        maximumPayloadBytes: Int = 1 << 20
    ) {
        self.intakeLists = [intakeList]
        self.invalidList = invalidList
        self.deadLetterList = deadLetterList
        self.namespace = namespace
        self.statusKeyPrefix = statusKeyPrefix
        self.statusTTL = statusTTL
        self.eventsChannelPrefix = eventsChannelPrefix
        self.workerID = workerID
        self.heartbeatTTL = heartbeatTTL
        self.maxDeliveries = maxDeliveries
        self.reaperLockTTL = reaperLockTTL
        self.reaperInterval = reaperInterval
        self.orphanScanInterval = orphanScanInterval
        self.invalidListMaxLength = invalidListMaxLength
        self.maximumPayloadBytes = maximumPayloadBytes
    }

    /// `hostname-pid-random`: readable in `SMEMBERS`, and never reused by a restarted process.
    public static func defaultWorkerID() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "host"
        let random = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        return "\(host)-\(getpid())-\(random)"
    }

    // MARK: Derived keys

    /// `<statusKeyPrefix><id>`: the list a platform reads.
    public func statusList(for id: String) -> String { statusKeyPrefix + id }
    /// The Redis stream of a streamed job's output chunks.
    public func outputStream(for id: String) -> String { outputKeyPrefix + id }
    /// The pub/sub channel of a job's status events.
    public func eventsChannel(for id: String) -> String { eventsChannelPrefix + id }
    /// Exists once the job's terminal status was published; lives as long as the status list.
    public func terminalMarker(for id: String) -> String { markerPrefix + id }
    /// The jobs a worker holds; the reaper returns them to the intake when the worker dies.
    public func processingList(for workerID: String) -> String { "\(namespace):processing:\(workerID)" }
    /// A worker is alive while this key exists.
    public func heartbeatKey(for workerID: String) -> String {
        heartbeatKeyParts.prefix + workerID + heartbeatKeyParts.suffix
    }
    /// `<ns>:worker:<workerID>:info`: a hash describing a live worker (host, VMM, pid, version, start, concurrency),
    /// written with every heartbeat and expiring with it, for `codebench-worker status` and the dashboard.
    public func workerInfoKey(for workerID: String) -> String { heartbeatKeyParts.prefix + workerID + ":info" }
    /// SHA-1 of a dead-lettered payload -> JSON record (id, reason, attempts, when, which worker died): the dead-letter
    /// list keeps raw payloads, as it always did, and this says why each one is there.
    public var deadLetterRecordsHash: String { "\(namespace):dead-records" }
    /// Prefix of ``terminalMarker(for:)``.
    public var markerPrefix: String { "\(namespace):terminal:" }
    /// Workers that registered (with a heartbeat) and were not reaped since.
    public var workersSet: String { "\(namespace):workers" }
    /// The image's languages as JSON, for platforms (README, "Languages"); rewritten by every worker at start.
    public var languagesKey: String { "\(namespace):languages" }
    /// SHA-1 of a payload -> how many of its deliveries ended with the worker's death.
    public var deliveriesHash: String { "\(namespace):deliveries" }
    /// SHA-1 of a claimed payload -> the id the worker read from it ("" when none): what the scripts use instead
    /// of decoding the payload again, so they can never read another id than the worker did.
    public var claimedIDsHash: String { "\(namespace):ids" }
    /// `<ns>:inflight:<id>` names the worker running a job with that id; a second payload with the id is refused
    /// while that worker's heartbeat lives.
    public func inFlightKey(for id: String) -> String { inFlightPrefix + id }
    /// `<ns>:cancel:<id>`: a platform's durable request to cancel job `id` (SET with a TTL; docs/wire-contract.md,
    /// "Cancelling a job"). Checked when the job is claimed and whenever the cancel channel resubscribes.
    public func cancelMark(for id: String) -> String { "\(namespace):cancel:" + id }
    /// The pub/sub channel a platform PUBLISHes a job id on after setting its ``cancelMark(for:)``, so workers hear
    /// it at once. Channels and keys do not share a namespace in Redis, so it may be named like a key prefix.
    public var cancelChannel: String { "\(namespace):cancel" }
    /// Prefix of ``inFlightKey(for:)``.
    public var inFlightPrefix: String { "\(namespace):inflight:" }
    /// `<ns>:owned:<id>` exists while a status list was started by this queue: a status list that exists without
    /// it belongs to someone else and is never written to.
    public func ownedMarker(for id: String) -> String { ownedPrefix + id }
    /// Prefix of ``ownedMarker(for:)``. The marker's value is the claim time (Redis clock, ms since the epoch) of the
    /// job's current delivery: how `status` knows a running job's age.
    public var ownedPrefix: String { "\(namespace):owned:" }
    /// The heartbeat key is `<prefix><workerID><suffix>`: the claim script builds it for an in-flight key's owner.
    var heartbeatKeyParts: (prefix: String, suffix: String) { ("\(namespace):worker:", ":alive") }
    /// Held by the one reaper acting at a time.
    public var reaperLock: String { "\(namespace):reaper:lock" }

    var statusTTLSeconds: Int { max(1, Int(statusTTL.components.seconds)) }
    var heartbeatTTLMilliseconds: Int { max(1, Self.milliseconds(heartbeatTTL)) }
    var reaperLockTTLMilliseconds: Int { max(1, Self.milliseconds(reaperLockTTL)) }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
