/// How each QEMU runs jailed (docs/security.md): its own uid and gid from a pool, no capabilities,
/// `no_new_privs`, new mount, PID, IPC, UTS and network namespaces, a root that
/// holds only `/usr` (read-only: QEMU, its libraries and firmware), the VM's kernel and root
/// filesystem (read-only), its socket directory and a few device nodes, QEMU's `-sandbox` seccomp
/// filter, rlimits on file size and open files, a per-VM cgroup, and a parent-death signal.
///
/// One process, `codebench-jail`, does the launch (namespaces, root, limits, credentials, then exec
/// QEMU), see ``QEMUJailLauncher``; the worker must run as root to use it.
public struct QEMUJail: Sendable, Hashable {
    /// Each VM's QEMU runs as its own uid from this range; never shared by two live VMs of this process.
    public var uidRange: ClosedRange<UInt32>
    /// The gid all jailed QEMUs share; it owns nothing on the host.
    public var gid: UInt32
    /// `RLIMIT_FSIZE` of a VM's QEMU (bounds the files it may write: the egress proxy's log).
    public var maximumFileSizeBytes: Int
    /// `RLIMIT_FSIZE` of the VM a snapshot is saved from, on top of its guest memory: the migration
    /// stream of a 256 MiB guest measured 53 MB, never more than guest memory plus device state.
    public var snapshotFileAllowanceBytes: Int
    /// `RLIMIT_NOFILE`.
    public var maximumOpenFiles: Int
    /// The per-VM cgroup; nil leaves QEMU in the worker's cgroup.
    public var cgroup: QEMUCgroupLimits?
    /// The uid and gid of the worker's one egress proxy process (``EgressProxyHost``): outside the
    /// VMs' range, so no QEMU can signal or trace it.
    public var egressProxyUID: UInt32
    public var egressProxyGID: UInt32

    /// The launcher; nil means `codebench-jail` beside this executable.
    public var launcherPath: String?
    /// util-linux's `setpriv`, which starts the egress proxy as its own uid (``EgressProxyHost``).
    public var setprivPath: String

    public init(
        uidRange: ClosedRange<UInt32> = 64_000...64_999,
        gid: UInt32 = 64_000,
        maximumFileSizeBytes: Int = 16 << 20,
        snapshotFileAllowanceBytes: Int = 64 << 20,
        maximumOpenFiles: Int = 256,
        cgroup: QEMUCgroupLimits? = QEMUCgroupLimits(),
        egressProxyUID: UInt32 = 63_999,
        egressProxyGID: UInt32 = 63_999,
        launcherPath: String? = nil,
        setprivPath: String = "/usr/bin/setpriv"
    ) {
        self.uidRange = uidRange
        self.gid = gid
        self.maximumFileSizeBytes = maximumFileSizeBytes
        self.snapshotFileAllowanceBytes = snapshotFileAllowanceBytes
        self.maximumOpenFiles = maximumOpenFiles
        self.cgroup = cgroup
        self.egressProxyUID = egressProxyUID
        self.egressProxyGID = egressProxyGID
        self.launcherPath = launcherPath
        self.setprivPath = setprivPath
    }

    /// ``launcherPath``, or `codebench-jail` in this executable's directory.
    public var resolvedLauncherPath: String {
        launcherPath ?? CompanionExecutable.path("codebench-jail")
    }

    /// Where the VM's files appear inside the jail.
    enum Path {
        static let kernel = "/vm/kernel"
        static let rootfs = "/vm/rootfs"
        /// The VM's socket directory (the host's `<runtime dir>/j`).
        static let run = "/run/vm"
        /// The incoming snapshot (restore) is a descriptor the launcher opens as root before dropping
        /// privileges; the file itself is not in the jail. The outgoing one (template) is a descriptor
        /// the worker hands over on QMP (``QMPDescriptorHandOver``).
        static let incomingFD = 3
    }
}

/// The per-VM cgroup's limits.
public struct QEMUCgroupLimits: Sendable, Hashable {
    /// QEMU's own memory on top of guest RAM and the translation cache: code, heap, device state,
    /// page tables (measured in docs/security.md).
    public var overheadMiB: Int
    /// `cpu.max` quota per vCPU per period (100 000 = one whole CPU per vCPU). QEMU's I/O thread
    /// runs beside the vCPU thread, so a VM may use a little more than its vCPUs when allowed.
    public var cpuQuotaMicrosecondsPerVCPU: Int
    public var cpuPeriodMicroseconds: Int
    /// `pids.max`: QEMU's threads (vCPUs, I/O, RCU, worker pool) and, with network, its egress proxies.
    public var maximumTasks: Int

    public init(overheadMiB: Int = 96, cpuQuotaMicrosecondsPerVCPU: Int = 100_000, cpuPeriodMicroseconds: Int = 100_000, maximumTasks: Int = 128) {
        self.overheadMiB = overheadMiB
        self.cpuQuotaMicrosecondsPerVCPU = cpuQuotaMicrosecondsPerVCPU
        self.cpuPeriodMicroseconds = cpuPeriodMicroseconds
        self.maximumTasks = maximumTasks
    }
}
