#if canImport(Glibc)
import Glibc
#endif
import MicroVM

extension QEMUDriver {
    /// Which QEMU accelerator runs the guest. Choosing one for a host (KVM if its probe boots, else
    /// TCG) is ``VMMSelection``'s job, not the driver's.
    public enum Accelerator: String, Sendable, Hashable, CaseIterable {
        /// Software emulation: slower, works everywhere (and is what works on nested PVM KVM hosts).
        case tcg
        /// Hardware virtualisation through /dev/kvm.
        case kvm

        /// The accelerator of a QEMU ``VMMKind``; nil for Firecracker.
        public init?(_ kind: VMMKind) {
            switch kind {
            case .qemuKVM: self = .kvm
            case .qemuTCG: self = .tcg
            case .firecracker: return nil
            }
        }

        /// The ``VMMKind`` QEMU is under this accelerator (`qemu-tcg`, `qemu-kvm`).
        public var kind: VMMKind { self == .kvm ? .qemuKVM : .qemuTCG }
    }

    /// How the driver runs QEMU. A value with defaults; the VM's shape comes from ``VMConfiguration``.
    public struct Configuration: Sendable, Hashable {
        /// The default ``snapshotDirectory`` of the worker.
        public static let defaultSnapshotDirectory = "/var/cache/codebench/snapshots"
        /// Loads what most jobs start with: the shell and the Python interpreter with its startup modules.
        public static let defaultSnapshotWarmup = "true && python3 -c pass"
        /// The TCG translation cache every VM gets unless configured otherwise (docs/security.md).
        public static let defaultTranslationCacheMiB = 64

        /// The QEMU system emulator.
        public var binaryPath: String
        public var accelerator: Accelerator
        /// Appended to the kernel command line.
        public var extraKernelArguments: [String]
        /// Host TSC frequency for `tsc_early_khz=` (without it TSC calibration under TCG can hang);
        /// nil reads it from the host (sysfs, else /proc/cpuinfo).
        public var tscKHz: Int?
        /// TCG translation-block cache size in MiB (`-accel tcg,tb-size=`); nil keeps QEMU's default,
        /// which grows up to 1 GiB for a guest that keeps writing fresh code. Bounded by default: it is
        /// part of each VM's cgroup memory limit.
        public var tcgTranslationCacheMiB: Int?
        /// How QEMU is jailed (docs/security.md); nil runs it unjailed, as the worker's own uid (root).
        /// The library leaves it to its caller (the driver also serves tests and benchmarks that compare
        /// both); the worker turns it on unless `qemu-jail=off`.
        public var jail: QEMUJail?
        /// Bound of a probe boot (``QEMUDriver/probe(accelerator:image:configuration:boot:logger:)``).
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
        /// How VMs are restored from a snapshot: `streamed` (the library's default) copies the guest's
        /// memory into each VM; `copy-on-write` maps the template's sealed memory privately, jailed or
        /// not (``RestoreMode``).
        public var restoreMode: QEMUDriver.RestoreMode
        /// The egress proxy (`codebench-egress`) a VM with network reaches at 10.0.2.100:3128, its only
        /// way out (docs/network.md); nil looks for it next to this executable.
        public var egressProxyPath: String?
        /// Ports the egress proxy lets VMs connect to.
        public var egressPorts: [Int]
        /// Addresses the egress proxy lets VMs reach although they are private or reserved: an internal
        /// package mirror, say. Each is an exception to the SSRF protection; never the host's own.
        public var egressAllowedAddresses: [String]
        /// QEMU processes kept spawned ahead of copy-on-write restores, each waiting for the state of
        /// the VM it will become (``QEMUDriver/runStandby()``; docs/snapshots.md, "Standby QEMUs").
        /// 0, the library's default, spawns each VM's QEMU when the VM is asked for.
        public var standbyVMMs: Int

        public init(
            binaryPath: String = "/usr/bin/qemu-system-x86_64",
            accelerator: Accelerator = .tcg,
            extraKernelArguments: [String] = [],
            tscKHz: Int? = nil,
            tcgTranslationCacheMiB: Int? = Configuration.defaultTranslationCacheMiB,
            kvmProbeTimeout: Duration = .seconds(10),
            cpuModel: String? = nil,
            snapshotDirectory: String? = nil,
            snapshotSaveTimeout: Duration = .seconds(60),
            snapshotWarmup: String? = Configuration.defaultSnapshotWarmup,
            restoreMode: QEMUDriver.RestoreMode = .streamed,
            egressProxyPath: String? = nil,
            egressPorts: [Int] = [443, 80],
            egressAllowedAddresses: [String] = [],
            jail: QEMUJail? = nil,
            standbyVMMs: Int = 0
        ) {
            self.standbyVMMs = standbyVMMs
            self.jail = jail
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
            self.restoreMode = restoreMode
            self.egressProxyPath = egressProxyPath
            self.egressPorts = egressPorts
            self.egressAllowedAddresses = egressAllowedAddresses
        }

        /// ``egressProxyPath``, or `codebench-egress` in this executable's directory.
        public var resolvedEgressProxyPath: String {
            egressProxyPath ?? CompanionExecutable.path("codebench-egress")
        }
    }
}
