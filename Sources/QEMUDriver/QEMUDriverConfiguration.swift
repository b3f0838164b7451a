extension QEMUDriver {
    /// Which QEMU accelerator runs the guest.
    public enum Accelerator: String, Sendable, Hashable, CaseIterable {
        /// Software emulation: slower, works everywhere (and is what works on nested PVM KVM hosts).
        case tcg
        /// Hardware virtualisation through /dev/kvm.
        case kvm
        /// KVM if a boot probe of the real image under KVM succeeds (once per process), else TCG.
        case auto
    }

    /// How the driver runs QEMU. A value with defaults; the VM's shape comes from ``VMConfiguration``.
    public struct Configuration: Sendable, Hashable {
        /// The default ``snapshotDirectory`` of the worker.
        public static let defaultSnapshotDirectory = "/var/cache/codebench/snapshots"
        /// Loads what most jobs start with: the shell and the Python interpreter with its startup modules.
        public static let defaultSnapshotWarmup = "true && python3 -c pass"

        /// The QEMU system emulator.
        public var binaryPath: String
        public var accelerator: Accelerator
        /// Appended to the kernel command line.
        public var extraKernelArguments: [String]
        /// Host TSC frequency for `tsc_early_khz=` (without it TSC calibration under TCG can hang);
        /// nil reads it from the host (sysfs, else /proc/cpuinfo).
        public var tscKHz: Int?
        /// TCG translation-block cache size in MiB (`-accel tcg,tb-size=`); nil keeps QEMU's default.
        public var tcgTranslationCacheMiB: Int?
        /// Bound of the KVM boot probe run by `.auto`.
        public var kvmProbeTimeout: Duration
        /// `-cpu` value; nil picks `max,-xsave` under TCG and `max` under KVM.
        public var cpuModel: String?
        /// Where saved VM states live. When set, VMs start by restoring a snapshot of a freshly booted,
        /// idle guest (made on first use, keyed by QEMU, image and machine) instead of booting the kernel;
        /// nil boots every VM cold. See docs/snapshots.md.
        public var snapshotDirectory: String?
        /// Bound of saving a snapshot (booting the template VM and writing its state).
        public var snapshotSaveTimeout: Duration
        /// A fixed command of ours the template VM runs before it is saved, so the files every job
        /// needs (the shell, the C library, the Python interpreter) are already in the restored guest's
        /// page cache. Never a job's code. nil saves the guest as it booted.
        public var snapshotWarmup: String?

        public init(
            binaryPath: String = "/usr/bin/qemu-system-x86_64",
            accelerator: Accelerator = .auto,
            extraKernelArguments: [String] = [],
            tscKHz: Int? = nil,
            tcgTranslationCacheMiB: Int? = nil,
            kvmProbeTimeout: Duration = .seconds(10),
            cpuModel: String? = nil,
            snapshotDirectory: String? = nil,
            snapshotSaveTimeout: Duration = .seconds(60),
            snapshotWarmup: String? = Configuration.defaultSnapshotWarmup
        ) {
            self.binaryPath = binaryPath
            self.accelerator = accelerator
            self.extraKernelArguments = extraKernelArguments
            self.tscKHz = tscKHz
            self.tcgTranslationCacheMiB = tcgTranslationCacheMiB
            self.kvmProbeTimeout = kvmProbeTimeout
            self.cpuModel = cpuModel
            self.snapshotDirectory = snapshotDirectory
            self.snapshotSaveTimeout = snapshotSaveTimeout
            self.snapshotWarmup = snapshotWarmup
        }
    }
}
