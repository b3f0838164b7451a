import AgentProtocol
import Languages
import MicroVM

/// Everything an operator can set on a worker. Every field has a default, so
/// `WorkerConfiguration()` is a working local worker; ``validate()`` runs before the service starts.
///
/// Loaded by ``WorkerConfigurationLoader`` from flags, `CODEBENCH_*` environment variables and an
/// optional JSON file, in that precedence.
public struct WorkerConfiguration: Sendable, Equatable {
    /// The `vmm` setting; the decision it feeds is ``VMMSelection``'s (MicroVM).
    public typealias VMMChoice = MicroVM.VMMChoice
    /// The `qemu-accelerator` setting (see ``qemuAccelerator``).
    public typealias QEMUAcceleratorChoice = MicroVM.QEMUAcceleratorChoice

    // MARK: Redis and queue names

    /// `redis://[user:password@]host:port[/db]`, `rediss://...` or `unix:///path`.
    public var redisURL: String = "redis://127.0.0.1:6379"
    /// The lists platforms `RPUSH` jobs onto, highest priority first (`intake-lists=jobs:high,jobs`): a job is
    /// taken from a list only while the lists before it are empty (docs/reliability.md, "Priorities").
    public var intakeLists: [String] = ["jobs"]
    /// The first intake list, where jobs given back go; setting it (`intake-list`) makes it the only one.
    public var intakeList: String {
        get { intakeLists.first ?? "" }
        set { intakeLists = [newValue] }
    }
    /// Where payloads without a readable id go, with the reason.
    public var invalidList: String = "jobs:invalid"
    /// Where jobs abandoned too many times go.
    public var deadLetterList: String = "jobs:dead"
    /// Prefix of the queue's bookkeeping keys (processing lists, heartbeats, terminal markers).
    public var namespace: String = "jobs"
    /// Every status push is also PUBLISHed on this prefix + the job id.
    public var eventsChannelPrefix: String = "codebench:events:"
    /// A job with `"stream": true` publishes its output on the Redis stream named by this prefix + the job id.
    public var outputKeyPrefix: String = "codebench:output:"
    /// Prepended to the job id to name its status list (`""` as the original worker; `worker_job_status_` for the later API).
    public var statusKeyPrefix: String = ""
    /// Status lists expire this long after their last push.
    public var statusTTL: Duration = .seconds(24 * 3600)
    /// This worker's identity in Redis (processing list, heartbeat); nil means hostname-pid-random.
    public var workerID: String?
    /// How long this worker's heartbeat lives; past it, another worker's reaper requeues its jobs.
    public var heartbeatTTL: Duration = .seconds(10)
    /// Deliveries after which a job that keeps killing its workers is dead-lettered.
    public var maxDeliveries: Int = 3
    /// Payloads above this size are rejected as invalid without being parsed.
    public var maxPayloadBytes: Int = 1 << 20

    // MARK: VMs

    /// Which VMM boots the job VMs (``DriverSelection``): `auto` takes Firecracker when usable, else
    /// QEMU with KVM when its probe passes, else QEMU with TCG.
    public var vmm: VMMChoice = .auto
    /// For QEMU: `kvm`, `tcg`, or `auto` (KVM when a boot probe under KVM passes, else TCG). Setting
    /// `tcg` skips the probe, which on hosts where KVM is present but unusable costs its timeout at start.
    public var qemuAccelerator: QEMUAcceleratorChoice = .auto
    /// Holds `vmlinux` and `rootfs.ext4` (built by `scripts/build-guest-image`).
    public var imageDirectory: String = GuestImage.defaultDirectory
    /// The languages of the image in ``imageDirectory``: not a setting, ``WorkerAssembly`` reads them from
    /// the image's languages.json at start (``LanguageRegistry/legacy`` for an image without one).
    public var languages: LanguageRegistry = .legacy
    /// Per-VM sockets and files live under it.
    public var runtimeDirectory: String = "/run/codebench"
    /// VMs running at once; nil means ``WorkerConfiguration/defaultConcurrency(cores:memoryBytes:perVMBytes:)``
    /// of this host and ``perVMMemoryBytes``.
    public var concurrency: Int?
    public var vmMemoryMiB: Int = 256
    public var vmVCPUs: Int = 1
    public var bootTimeout: Duration = .seconds(20)
    /// Start VMs (QEMU and Firecracker) from a snapshot of a freshly booted guest (made on first use)
    /// instead of booting the kernel for every job: under QEMU TCG about 0.15 s instead of 1 s to a
    /// ready agent. Off boots every VM cold.
    public var snapshots: Bool = true
    /// Where snapshots are kept (root-only; keyed by QEMU, image and VM shape).
    public var snapshotDirectory: String = "/var/cache/codebench/snapshots"
    /// Run each QEMU in its jail (``QEMUJail``, docs/security.md): its own uid, no capabilities,
    /// `no_new_privs`, its own namespaces and read-only root, seccomp, a cgroup and rlimits. Off runs
    /// QEMU unjailed as root, which the worker warns about at every start and in `/readyz`
    /// (``qemuJailWarning``). Firecracker is not affected.
    public var qemuJail: Bool = true
    /// How QEMU VMs are restored from their snapshot (docs/snapshots.md, "Restore modes"):
    /// `copy-on-write` (the default: measured faster to start and less than half the memory per VM)
    /// maps the template's sealed memory (a memfd) privately into each VM, jailed or not; `streamed`
    /// copies the guest's memory into each.
    public var qemuRestore: QEMURestoreChoice = .copyOnWrite

    /// The `qemu-restore` setting; the driver's ``QEMUDriver/RestoreMode`` under the same names.
    public enum QEMURestoreChoice: String, Sendable, Equatable, CaseIterable {
        case streamed
        case copyOnWrite = "copy-on-write"
    }
    /// VMs kept booted ahead of demand (``WarmVMPool``), on top of ``concurrency``: each costs a VM's
    /// memory while idle, and saves a job the VM's start (under QEMU TCG ~0.16 s from a snapshot).
    /// Only jobs without network use them. 0 (the default) boots every VM when its job arrives.
    public var warmVMs: Int = 0
    /// QEMUs kept spawned ahead of copy-on-write restores (``QEMUDriver/Configuration/standbyVMMs``):
    /// each is a jailed QEMU that has started but holds no guest yet, waiting to become the next
    /// job's VM; it takes the launcher's and QEMU's start out of a job's wait (docs/snapshots.md,
    /// "Standby QEMUs"). Unlike ``warmVMs`` no guest runs ahead of a job.
    public var qemuStandby: Int = 1
    /// Whether the snapshot's template starts the image's fork servers, so that restored VMs fork
    /// their Python programs from an interpreter that has started already (``VMConfiguration/snapshotForkServers``;
    /// docs/snapshots.md, "Warm interpreters"): a Python job's host CPU about halves. Off: a fresh
    /// interpreter per program, with its own hash seed, at the cost of its start-up.
    public var warmInterpreters = true

    // MARK: Job limits

    /// The most any job may ask for; requests above are lowered to these.
    public var maximumLimits = ResourceLimits(
        wallTimeMilliseconds: 60_000, memoryBytes: 192 << 20, maxProcesses: 256, maxOutputBytesPerStream: 4 << 20)
    /// What a job gets for each limit it does not ask for.
    public var defaultLimits = ResourceLimits(
        wallTimeMilliseconds: 10_000, memoryBytes: 128 << 20, maxProcesses: 64, maxOutputBytesPerStream: 1 << 20)
    /// Whether jobs may ask for a network device. Off by default: untrusted code gets no network.
    public var allowNetwork: Bool = false
    /// Ports a network job may reach through the egress proxy (docs/network.md).
    public var egressPorts: [Int] = [443, 80]
    /// Addresses a network job may reach although they are private or reserved (an internal mirror).
    /// Each is an exception to the proxy's SSRF protection: never the host's own or a shared network.
    public var egressAllowedAddresses: [String] = []
    /// Judge mode: test cases, compiler options, compile, CPU and file-size limits.
    public var judge = JudgeConfiguration()
    /// The host stops a VM this long after the job's wall limit (the guest is not trusted to stop itself).
    public var hostTimeoutMargin: Duration = .seconds(5)

    // MARK: Lifecycle

    /// On SIGTERM/SIGINT, running jobs get this long to finish; then their VMs are destroyed and the jobs requeued.
    public var drainGracePeriod: Duration = .seconds(30)
    /// Terminal results that could not be published (Redis down) are kept in memory, at most this many.
    public var outboxCapacity: Int = 1000

    // MARK: Observability

    /// Where `/metrics`, `/healthz` and `/readyz` are served; ``StatusAddress/off`` serves nothing.
    public var statusAddress: StatusAddress = .default

    public init() {}

    /// The VM shape every job gets (network is decided per job).
    public func vmConfiguration(network: Bool) -> VMConfiguration {
        var vm = VMConfiguration(
            image: .at(imageDirectory), vcpus: vmVCPUs, memoryMiB: vmMemoryMiB, network: network,
            bootTimeout: bootTimeout, runtimeDirectory: runtimeDirectory, expectedJobLimits: expectedJobLimits)
        // Every VM of the worker, not only the pool's: one snapshot serves them all.
        if warmVMs > 0 { vm.snapshotPreparedJobs = 2 }
        vm.snapshotForkServers = warmInterpreters
        return vm
    }
}
