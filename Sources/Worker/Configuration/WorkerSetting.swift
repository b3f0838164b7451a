import Foundation
import AgentProtocol

/// One named setting of ``WorkerConfiguration``: the same name is used as a config-file key
/// (`redis-url`, or `redis_url`), an environment variable (`CODEBENCH_REDIS_URL`) and a flag (`--redis-url`).
public struct WorkerSetting: Sendable {
    public let name: String
    public let help: String
    let apply: @Sendable (inout WorkerConfiguration, String) throws(WorkerSettingValueError) -> Void

    /// `CODEBENCH_` + the name in upper snake case.
    public var environmentVariable: String {
        "CODEBENCH_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// Finds a setting by name, accepting snake_case for kebab-case.
    public static func named(_ name: String) -> WorkerSetting? {
        let normalized = name.replacingOccurrences(of: "_", with: "-").lowercased()
        return all.first { $0.name == normalized }
    }
}

/// A value that does not parse; the loader adds where it came from.
struct WorkerSettingValueError: Error {
    var expected: String
}

extension WorkerSetting {
    /// Every setting, in the order `--help` lists them.
    public static let all: [WorkerSetting] = [
        string("redis-url", "Redis to take jobs from (redis://, rediss://, unix://)") { $0.redisURL = $1 },
        string("intake-list", "list jobs are pushed onto (one list; see intake-lists)") { $0.intakeList = $1 },
        WorkerSetting(name: "intake-lists", help: "lists jobs are taken from, highest priority first (e.g. jobs:high,jobs)") {
            (config, value) throws(WorkerSettingValueError) in
            let names = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.contains(where: \.isEmpty) else {
                throw WorkerSettingValueError(expected: "comma-separated list names, none of them empty")
            }
            config.intakeLists = names
        },
        string("invalid-list", "list for payloads without a readable id") { $0.invalidList = $1 },
        string("dead-letter-list", "list for jobs abandoned too often") { $0.deadLetterList = $1 },
        string("namespace", "prefix of the queue's bookkeeping keys") { $0.namespace = $1 },
        string("events-channel-prefix", "status pushes are also PUBLISHed on this prefix + id") { $0.eventsChannelPrefix = $1 },
        string("output-key-prefix", "a streamed job's output goes to the Redis stream prefix + id") { $0.outputKeyPrefix = $1 },
        string("status-key-prefix", "prefix of each job's status list (e.g. worker_job_status_)") { $0.statusKeyPrefix = $1 },
        seconds("status-ttl-seconds", "status lists expire after this") { $0.statusTTL = $1 },
        string("worker-id", "this worker's id in Redis (default hostname-pid-random)") { $0.workerID = $1 },
        seconds("heartbeat-ttl-seconds", "a worker silent this long is presumed dead") { $0.heartbeatTTL = $1 },
        int("max-deliveries", "deliveries before a job is dead-lettered") { $0.maxDeliveries = $1 },
        int("max-payload-bytes", "larger payloads are rejected unparsed") { $0.maxPayloadBytes = $1 },
        WorkerSetting(name: "vmm", help: "qemu, firecracker or auto") { (config, value) throws(WorkerSettingValueError) in
            guard let choice = WorkerConfiguration.VMMChoice(rawValue: value.lowercased()) else {
                throw WorkerSettingValueError(expected: "one of qemu, firecracker, auto")
            }
            config.vmm = choice
        },
        WorkerSetting(name: "qemu-accelerator", help: "auto, kvm or tcg (auto probes KVM once at start)") {
            (config, value) throws(WorkerSettingValueError) in
            guard let choice = WorkerConfiguration.QEMUAcceleratorChoice(rawValue: value.lowercased()) else {
                throw WorkerSettingValueError(expected: "one of auto, kvm, tcg")
            }
            config.qemuAccelerator = choice
        },
        string("image-dir", "directory holding vmlinux and rootfs.ext4") { $0.imageDirectory = $1 },
        string("runtime-dir", "directory for per-VM sockets") { $0.runtimeDirectory = $1 },
        int("concurrency", "VMs at once (default from cores and memory)") { $0.concurrency = $1 },
        int("vm-memory-mib", "memory of each VM") { $0.vmMemoryMiB = $1 },
        int("vm-vcpus", "vCPUs of each VM") { $0.vmVCPUs = $1 },
        seconds("boot-timeout-seconds", "a VM not up by then fails the job") { $0.bootTimeout = $1 },
        bool("snapshots", "start VMs from a snapshot of a booted guest (default true)") { $0.snapshots = $1 },
        string("snapshot-dir", "where VM snapshots are kept") { $0.snapshotDirectory = $1 },
        WorkerSetting(name: "qemu-jail", help: "on (default): each QEMU runs jailed (docs/security.md); off: unjailed as root") {
            (config, value) throws(WorkerSettingValueError) in
            switch value.trimmingCharacters(in: .whitespaces).lowercased() {
            case "on", "true", "1", "yes": config.qemuJail = true
            case "off", "false", "0", "no": config.qemuJail = false
            default: throw WorkerSettingValueError(expected: "on or off")
            }
        },
        WorkerSetting(
            name: "qemu-restore",
            help: "copy-on-write (default): VMs, jailed or not, map the snapshot's sealed memory privately, copying no guest RAM; streamed: the snapshot's memory is copied into each VM (docs/snapshots.md)"
        ) { (config, value) throws(WorkerSettingValueError) in
            guard let choice = WorkerConfiguration.QEMURestoreChoice(rawValue: value.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw WorkerSettingValueError(expected: "streamed or copy-on-write")
            }
            config.qemuRestore = choice
        },
        int("warm-vms", "VMs kept booted ahead of jobs, on top of concurrency (default 0)") { $0.warmVMs = $1 },
        bool(
            "warm-interpreters",
            "a snapshot's template starts the image's fork servers and restored VMs fork Python programs from them (default true; docs/snapshots.md)"
        ) { $0.warmInterpreters = $1 },
        int("qemu-standby", "QEMUs kept started, with no guest yet, ahead of copy-on-write restores (default 1)") { $0.qemuStandby = $1 },
        int("max-wall-ms", "most wall time a job may ask for") { $0.maximumLimits.wallTimeMilliseconds = $1 },
        int("max-memory-mib", "most memory a job may ask for") { $0.maximumLimits.memoryBytes = $1 << 20 },
        int("max-processes", "most processes a job may ask for") { $0.maximumLimits.maxProcesses = $1 },
        int("max-output-bytes", "most output per stream a job may ask for") { $0.maximumLimits.maxOutputBytesPerStream = $1 },
        int("default-wall-ms", "wall time of a job that does not ask") { $0.defaultLimits.wallTimeMilliseconds = $1 },
        int("default-memory-mib", "memory of a job that does not ask") { $0.defaultLimits.memoryBytes = $1 << 20 },
        int("default-processes", "processes of a job that does not ask") { $0.defaultLimits.maxProcesses = $1 },
        int("default-output-bytes", "output per stream of a job that does not ask") {
            $0.defaultLimits.maxOutputBytesPerStream = $1
        },
        bool("allow-network", "let jobs that ask for it have a network device") { $0.allowNetwork = $1 },
        list("egress-ports", "ports network jobs may reach through the egress proxy (default 443,80)") { (config, values) throws(WorkerSettingValueError) in
            let ports = values.compactMap { Int($0) }
            guard ports.count == values.count else { throw WorkerSettingValueError(expected: "comma-separated port numbers") }
            config.egressPorts = ports
        },
        list("egress-allow-addresses", "IP addresses network jobs may reach although private or reserved (default none)") { (config, values) throws(WorkerSettingValueError) in
            config.egressAllowedAddresses = values
        },
        seconds("host-timeout-margin-seconds", "the host stops a VM this long after the job's wall limit") {
            $0.hostTimeoutMargin = $1
        },
        seconds("drain-grace-seconds", "on SIGTERM, running jobs get this long before they are requeued") {
            $0.drainGracePeriod = $1
        },
        int("outbox-capacity", "results kept in memory while Redis is unreachable") { $0.outboxCapacity = $1 },
        WorkerSetting(name: "status-address", help: "host:port of /metrics, /healthz and /readyz (default 127.0.0.1:9464), or off") {
            (config, value) throws(WorkerSettingValueError) in
            guard let address = StatusAddress(parsing: value) else {
                throw WorkerSettingValueError(expected: "host:port, [ipv6]:port or off")
            }
            config.statusAddress = address
        },
    ] + judgeSettings

    private static func string(
        _ name: String, _ help: String, _ set: @escaping @Sendable (inout WorkerConfiguration, String) -> Void
    ) -> WorkerSetting {
        WorkerSetting(name: name, help: help) { (config, value) throws(WorkerSettingValueError) in set(&config, value) }
    }

    static func int(
        _ name: String, _ help: String, _ set: @escaping @Sendable (inout WorkerConfiguration, Int) -> Void
    ) -> WorkerSetting {
        WorkerSetting(name: name, help: help) { (config, value) throws(WorkerSettingValueError) in
            guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
                throw WorkerSettingValueError(expected: "an integer")
            }
            set(&config, number)
        }
    }

    private static func seconds(
        _ name: String, _ help: String, _ set: @escaping @Sendable (inout WorkerConfiguration, Duration) -> Void
    ) -> WorkerSetting {
        WorkerSetting(name: name, help: help) { (config, value) throws(WorkerSettingValueError) in
            guard let number = Double(value.trimmingCharacters(in: .whitespaces)), number.isFinite, number >= 0,
                number < 1e9
            else {
                throw WorkerSettingValueError(expected: "a number of seconds")
            }
            set(&config, .milliseconds(Int64((number * 1000).rounded())))
        }
    }

    /// Comma-separated values, blanks dropped; an empty value is an empty list.
    private static func list(
        _ name: String, _ help: String,
        _ set: @escaping @Sendable (inout WorkerConfiguration, [String]) throws(WorkerSettingValueError) -> Void
    ) -> WorkerSetting {
        WorkerSetting(name: name, help: help) { (config, value) throws(WorkerSettingValueError) in
            let values = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            try set(&config, values)
        }
    }

    static func bool(
        _ name: String, _ help: String, _ set: @escaping @Sendable (inout WorkerConfiguration, Bool) -> Void
    ) -> WorkerSetting {
        WorkerSetting(name: name, help: help) { (config, value) throws(WorkerSettingValueError) in
            switch value.lowercased() {
            case "1", "true", "yes", "on": set(&config, true)
            case "0", "false", "no", "off": set(&config, false)
            default: throw WorkerSettingValueError(expected: "true or false")
            }
        }
    }
}
