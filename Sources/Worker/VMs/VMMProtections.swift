import FirecrackerDriver
import QEMUDriver

/// Which protections each VMM runs with, for `doctor` (docs/security.md). Pure: it reads the
/// drivers' configurations, so a test can check every line, and doctor shows what `run` would do.
public enum VMMProtections {
    /// The worker's QEMU: `configuration` as ``DriverSelection/qemuConfiguration(_:_:)`` builds it.
    /// - Parameter allowNetwork: the worker's `allow-network`: whether any VM may have network.
    public static func qemu(
        _ configuration: QEMUDriver.Configuration, vmMemoryMiB: Int, vcpus: Int, allowNetwork: Bool
    ) -> [VMMProtection] {
        guard let jail = configuration.jail else { return unjailedQEMU }
        let kvm = configuration.accelerator == .kvm
        var protections: [VMMProtection] = [
            .init(
                .separateUID, on: true,
                "each VM's QEMU runs as its own uid from \(jail.uidRange.lowerBound)-\(jail.uidRange.upperBound), gid \(jail.gid), "
                    + (kvm ? "and only /dev/kvm's group" : "no supplementary groups")),
            .init(.noCapabilities, on: true, "the launcher drops the bounding set, clears the inheritable and ambient sets; the uid change empties the rest"),
            .init(.noNewPrivileges, on: true, "no_new_privs: no setuid file or file capability raises it"),
            .init(.mountNamespace, on: true, "its own, private propagation"),
            .init(.pidNamespace, on: true, "QEMU is PID 1 of its own: when it dies, every process of the VM dies"),
            .init(.ipcNamespace, on: true, "its own"),
            .init(.utsNamespace, on: true, "its own"),
        ]
        protections.append(
            VMMProtection(
                .networkNamespace, on: true,
                allowNetwork
                    ? "its own: loopback only, plus, for a VM with network, the one listener the worker puts there for its egress proxy"
                    : "its own: loopback only"))
        protections += [
            .init(
                .ownRoot, on: true,
                "pivot_root into a read-only tmpfs: /usr, the VM's kernel and root filesystem (read-only), its socket "
                    + "directory, /dev/null, /dev/urandom\(kvm ? ", /dev/kvm" : "")"),
            .init(
                .seccomp, on: true,
                "QEMU's -sandbox on: obsolete, elevateprivileges, spawn and resourcecontrol denied"),
        ]
        protections += qemuCgroup(configuration, limits: jail.cgroup, vmMemoryMiB: vmMemoryMiB, vcpus: vcpus)
        protections += [
            .init(.rlimits, on: true, "RLIMIT_FSIZE \(jail.maximumFileSizeBytes >> 20) MiB, RLIMIT_NOFILE \(jail.maximumOpenFiles)"),
            .init(
                .parentDeathSignal, on: true,
                "SIGKILL on the launcher's death for QEMU, and on the worker's for the launcher: QEMU dies with the worker"),
        ]
        return protections
    }

    private static func qemuCgroup(
        _ configuration: QEMUDriver.Configuration, limits: QEMUCgroupLimits?, vmMemoryMiB: Int, vcpus: Int
    ) -> [VMMProtection] {
        guard let limits, let memory = configuration.vmMemoryLimitBytes(guestMemoryMiB: vmMemoryMiB) else {
            let why = "the jail has no cgroup limits (QEMUJail.cgroup is nil): QEMU stays in the worker's cgroup; QEMUCgroupLimits() turns it on"
            return [.init(.cgroupMemory, on: false, why), .init(.cgroupCPU, on: false, why), .init(.cgroupPIDs, on: false, why)]
        }
        let cache = (memory >> 20) - vmMemoryMiB - limits.overheadMiB
        let cacheText = configuration.accelerator == .tcg ? " + TCG translation cache \(cache) MiB" : ""
        return [
            .init(
                .cgroupMemory, on: true,
                "memory.max \(memory >> 20) MiB = guest \(vmMemoryMiB) MiB\(cacheText) + QEMU overhead \(limits.overheadMiB) MiB, no swap"),
            .init(
                .cgroupCPU, on: true,
                "cpu.max \(limits.cpuQuotaMicrosecondsPerVCPU * vcpus)/\(limits.cpuPeriodMicroseconds) µs (\(vcpus) vCPU\(vcpus == 1 ? "" : "s"))"),
            .init(.cgroupPIDs, on: true, "pids.max \(limits.maximumTasks)"),
        ]
    }

    /// Every protection off, each saying what `qemu-jail=off` leaves QEMU with.
    private static let unjailedQEMU: [VMMProtection] = {
        let why: [VMMProtection.Kind: String] = [
            .separateUID: "QEMU runs as the worker's uid (root)",
            .noCapabilities: "QEMU keeps every capability root has",
            .noNewPrivileges: "not set",
            .mountNamespace: "QEMU shares the worker's",
            .pidNamespace: "QEMU shares the worker's and sees every process",
            .ipcNamespace: "QEMU shares the host's",
            .utsNamespace: "QEMU shares the host's",
            .networkNamespace: "QEMU shares the host's",
            .ownRoot: "QEMU sees the host's whole file system",
            .seccomp: "-sandbox is only given to jailed QEMU",
            .cgroupMemory: "QEMU stays in the worker's cgroup",
            .cgroupCPU: "QEMU stays in the worker's cgroup",
            .cgroupPIDs: "QEMU stays in the worker's cgroup",
            .rlimits: "QEMU inherits the worker's",
            .parentDeathSignal: "a worker killed mid-job leaves QEMU running until the next start's leftover sweep",
        ]
        return VMMProtection.Kind.allCases.map { kind in
            VMMProtection(kind, on: false, "qemu-jail=off: \(why[kind] ?? "off"); qemu-jail=on (the default) turns it on")
        }
    }()

    /// Firecracker as `configuration` runs it: under its jailer when ``FirecrackerDriver/Configuration/jailer`` is set.
    public static func firecracker(_ configuration: FirecrackerDriver.Configuration, vmMemoryMiB: Int, vcpus: Int) -> [VMMProtection] {
        // Firecracker's own, jailer or not: the driver never passes --no-seccomp, and Firecracker sets
        // no_new_privs itself before it installs its filters.
        let seccomp = VMMProtection(.seccomp, on: true, "Firecracker's default filters, per thread (the driver never passes --no-seccomp)")
        let noNewPrivileges = VMMProtection(.noNewPrivileges, on: true, "Firecracker sets it before installing its seccomp filters")
        let parentDeath = VMMProtection(
            .parentDeathSignal, on: false,
            "neither the jailer nor Firecracker sets one: a worker killed mid-job leaves Firecracker running until "
                + "the next start's leftover sweep; nothing turns it on yet")
        guard let jailer = configuration.jailer else {
            let why: [VMMProtection.Kind: String] = [
                .separateUID: "runs as the worker's uid (root); the jailer's --uid turns it on",
                .noCapabilities: "keeps root's capabilities; the jailer turns it on (it execs Firecracker as --uid)",
                .mountNamespace: "shares the worker's; the jailer turns it on",
                .pidNamespace: "shares the worker's; the jailer's --new-pid-ns turns it on",
                .ipcNamespace: "shares the host's; the jailer has no option for it either",
                .utsNamespace: "shares the host's; the jailer has no option for it either",
                .networkNamespace: "shares the host's; the jailer's --netns turns it on",
                .ownRoot: "sees the host's whole file system; the jailer's chroot turns it on",
                .cgroupMemory: "stays in the worker's cgroup; the jailer's --cgroup memory.max turns it on",
                .cgroupCPU: "stays in the worker's cgroup; the jailer's --cgroup cpu.max turns it on",
                .cgroupPIDs: "stays in the worker's cgroup; the driver sets no pids.max, jailed or not",
                .rlimits: "inherits the worker's; the jailer's --resource-limit turns it on",
            ]
            return VMMProtection.Kind.allCases.map { kind in
                switch kind {
                case .seccomp: seccomp
                case .noNewPrivileges: noNewPrivileges
                case .parentDeathSignal: parentDeath
                default: VMMProtection(kind, on: false, "no jailer: \(why[kind] ?? "off")")
                }
            }
        }
        let notInJailer = "Firecracker's jailer has no option for it; nothing in this worker turns it on"
        return [
            .init(.separateUID, on: true, "jailer --uid from \(jailer.uidRange.lowerBound)-\(jailer.uidRange.upperBound), --gid \(jailer.gid)"),
            .init(.noCapabilities, on: true, "the jailer execs Firecracker as that uid, which leaves it no capabilities"),
            noNewPrivileges,
            .init(.mountNamespace, on: true, "the jailer unshares it before pivot_root"),
            jailer.newPIDNamespace
                ? VMMProtection(.pidNamespace, on: true, "jailer --new-pid-ns: Firecracker is PID 1 of its own")
                : VMMProtection(.pidNamespace, on: false, "JailerConfiguration.newPIDNamespace is false; true adds --new-pid-ns"),
            .init(.ipcNamespace, on: false, notInJailer),
            .init(.utsNamespace, on: false, notInJailer),
            jailer.networkNamespace.map { VMMProtection(.networkNamespace, on: true, "jailer --netns \($0)") }
                ?? VMMProtection(
                    .networkNamespace, on: false,
                    "JailerConfiguration.networkNamespace is nil, so Firecracker shares the host's; set it to a /var/run/netns name"),
            .init(
                .ownRoot, on: true,
                "the jailer's chroot (pivot_root) \(jailer.chrootBaseDirectory)/firecracker/<id>/root: kernel, root filesystem, sockets"),
            seccomp,
            .init(.cgroupMemory, on: true, "memory.max \(vmMemoryMiB + jailer.memoryOverheadMiB) MiB = guest \(vmMemoryMiB) + \(jailer.memoryOverheadMiB) MiB"),
            .init(
                .cgroupCPU, on: true,
                "cpu.max \(jailer.cpuQuotaMicrosecondsPerVCPU * vcpus)/\(jailer.cpuPeriodMicroseconds) µs (\(vcpus) vCPU\(vcpus == 1 ? "" : "s"))"),
            .init(.cgroupPIDs, on: false, "the driver gives the jailer no pids.max; JailerCommand would need --cgroup pids.max=N"),
            .init(.rlimits, on: true, "--resource-limit fsize=\(jailer.maximumFileSizeBytes >> 20) MiB, no-file=\(jailer.maximumOpenFiles)"),
            parentDeath,
        ]
    }

    /// Doctor's block: QEMU as the worker's settings start it (its accelerator, `qemu-jail`,
    /// `allow-network`, VM shape), then Firecracker as `firecracker` configures it. `jailProblems`
    /// are ``QEMUJailProbe``'s: with `qemu-jail=on` any of them makes the worker refuse to start.
    public static func report(
        worker: WorkerConfiguration, qemuAccelerator: QEMUDriver.Accelerator, firecracker: FirecrackerDriver.Configuration,
        jailProblems: [String]
    ) -> [String] {
        let qemuConfiguration = DriverSelection.qemuConfiguration(qemuAccelerator, worker)
        var lines = ["protections (docs/security.md):"]
        lines.append("  \(qemuAccelerator.kind) with qemu-jail=\(worker.qemuJail ? "on" : "off"):")
        if worker.qemuJail, !jailProblems.isEmpty {
            lines.append("    this host cannot jail QEMU, so `run` refuses to start: \(jailProblems.joined(separator: "; "))")
            lines.append("    (fix that, or set qemu-jail=off to run QEMU unjailed as root)")
        }
        lines += Self.qemu(qemuConfiguration, vmMemoryMiB: worker.vmMemoryMiB, vcpus: worker.vmVCPUs, allowNetwork: worker.allowNetwork).map { "    " + $0.line }
        lines.append(
            "  firecracker "
                + (firecracker.jailer.map { "under the jailer \($0.jailerPath):" }
                    ?? "without a jailer (the worker has no jailer setting yet; doctor --jailer PATH shows it jailed):"))
        lines += Self.firecracker(firecracker, vmMemoryMiB: worker.vmMemoryMiB, vcpus: worker.vmVCPUs).map { "    " + $0.line }
        return lines
    }
}
