/// How to run Firecracker under its jailer (chroot, cgroup v2, dropped privileges, optional netns).
/// See Firecracker's `docs/jailer.md` and `docs/prod-host-setup.md`.
public struct JailerConfiguration: Sendable, Hashable {
    /// The `jailer` binary of the same release as Firecracker.
    public var jailerPath: String
    /// `--chroot-base-dir`. Keep it short: host-side socket paths inside the jail must fit in
    /// `sun_path` (108 bytes).
    public var chrootBaseDirectory: String
    /// Each VM runs as its own uid from this range (`--uid`), so two VMMs can never touch each other.
    public var uidRange: ClosedRange<UInt32>
    /// `--gid`, shared by all VMMs.
    public var gid: UInt32
    /// `--cgroup memory.max=` is the guest memory plus this allowance for the VMM itself.
    public var memoryOverheadMiB: Int
    /// `--cgroup cpu.max=` quota per vCPU per period (`100000` = one whole CPU per vCPU).
    public var cpuQuotaMicrosecondsPerVCPU: Int
    public var cpuPeriodMicroseconds: Int
    /// `--resource-limit fsize=`: the largest file the VMM may write (bounds its log and metrics).
    public var maximumFileSizeBytes: Int
    /// `--resource-limit no-file=`.
    public var maximumOpenFiles: Int
    /// `--new-pid-ns`: the VMM becomes init of its own PID namespace.
    public var newPIDNamespace: Bool
    /// `--netns /var/run/netns/<name>` when set.
    public var networkNamespace: String?

    public init(
        jailerPath: String = "/usr/local/bin/jailer",
        chrootBaseDirectory: String = "/srv/jailer",
        uidRange: ClosedRange<UInt32> = 64_000...64_999,
        gid: UInt32 = 64_000,
        memoryOverheadMiB: Int = 64,
        cpuQuotaMicrosecondsPerVCPU: Int = 100_000,
        cpuPeriodMicroseconds: Int = 100_000,
        maximumFileSizeBytes: Int = 16 << 20,
        maximumOpenFiles: Int = 1024,
        newPIDNamespace: Bool = true,
        networkNamespace: String? = nil
    ) {
        self.jailerPath = jailerPath
        self.chrootBaseDirectory = chrootBaseDirectory
        self.uidRange = uidRange
        self.gid = gid
        self.memoryOverheadMiB = memoryOverheadMiB
        self.cpuQuotaMicrosecondsPerVCPU = cpuQuotaMicrosecondsPerVCPU
        self.cpuPeriodMicroseconds = cpuPeriodMicroseconds
        self.maximumFileSizeBytes = maximumFileSizeBytes
        self.maximumOpenFiles = maximumOpenFiles
        self.newPIDNamespace = newPIDNamespace
        self.networkNamespace = networkNamespace
    }
}
