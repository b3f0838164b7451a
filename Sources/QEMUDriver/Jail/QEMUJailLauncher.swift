/// The command that starts one jailed QEMU. Pure, so it can be checked without booting.
///
/// The worker spawns (in its own process group, as ``VMMProcess`` does for every VMM):
///
///     codebench-jail <root> <run> <kernel> <rootfs> <incoming> <proc> <cgroups> <uid> <gid> <groups>
///         <fsize> <nofile> <kvm> -- qemu-system-x86_64 <QEMU arguments>
///
/// `codebench-jail` (Sources/CodeBenchJail/main.c, one process, no exec until QEMU's) joins the VM's
/// cgroups, unshares the mount, PID, IPC, UTS and network namespaces and forks PID 1 of the new PID
/// namespace, which it waits for and whose exit it reports as its own (re-raising a signal). That
/// child builds the root on a small tmpfs (``QEMUJail/Path``), opens the snapshot descriptor
/// (streamed restores; a copy-on-write VM's memfd and state arrive as descriptors 3 and 4 and pass
/// through), mounts a pid-only proc of the new PID namespace for copy-on-write VMs only,
/// `pivot_root`s into it, remounts it read-only, sets the rlimits, drops every capability, clears the
/// groups, becomes `uid`:`gid`, sets `no_new_privs` and a parent-death SIGKILL and execs QEMU, which
/// stays PID 1 of its namespace: when it dies every process of the namespace dies.
///
/// One process rather than a shell script of util-linux tools: the script's ~14 execs cost ~18 ms of
/// host CPU per VM start, this ~3 ms (docs/security.md, "One process, not a script").
struct QEMUJailLauncher: Sendable, Hashable {
    var jail: QEMUJail
    var qemuPath: String
    /// The host directory the jail's root is mounted on (an empty directory in the runtime directory).
    var rootMountPoint: String
    /// The host directory that appears as ``QEMUJail/Path/run`` (owned by `uid`).
    var socketDirectory: String
    /// The kernel QEMU boots; nil for a VM restored from a snapshot, whose command line has no
    /// `-kernel`: its jail then holds no kernel image at all.
    var kernelPath: String?
    var rootfsPath: String
    var incomingStatePath: String?
    /// Leave the jail's proc mounted for QEMU: a copy-on-write VM's `memory-backend-file` is
    /// `/proc/self/fd/3` (``QEMUTemplateMemory/memoryPath``). That proc shows QEMU only itself:
    /// its own PID namespace, `subset=pid` (no `/proc/sys`, `kcore`, `sysrq-trigger`, ...), and
    /// `hidepid=invisible`.
    var keepsProc = false
    /// `cgroup.procs` files the launcher writes its pid into.
    var cgroupProcsFiles: [String] = []
    var uid: UInt32
    var groups: [UInt32] = []
    var bindKVM: Bool
    var fileSizeLimit: Int

    var executable: String { jail.resolvedLauncherPath }

    /// A fixed, minimal environment: QEMU needs nothing of the worker's.
    static let environment = QEMUJail.launcherEnvironment

    /// Arguments after argv[0]; `qemuArguments` are QEMU's after its argv[0]. Paths are arguments of
    /// their own (never parsed out of a longer string), lists separated by `:` or `,`; `-` means none.
    /// Always a network namespace of its own: a VM with network reaches only the listener the worker
    /// puts in it (``NamespaceListener``).
    func arguments(qemuArguments: [String]) -> [String] {
        func optional(_ value: String?) -> String { value ?? "-" }
        let arguments = [
            rootMountPoint, socketDirectory, optional(kernelPath), rootfsPath, optional(incomingStatePath), keepsProc ? "proc" : "-",
            cgroupProcsFiles.isEmpty ? "-" : cgroupProcsFiles.joined(separator: ":"),
            String(uid), String(jail.gid), groups.isEmpty ? "-" : groups.map(String.init).joined(separator: ","),
            String(fileSizeLimit), String(jail.maximumOpenFiles), bindKVM ? "kvm" : "-",
        ]
        return arguments + ["--", qemuPath] + qemuArguments
    }
}

extension QEMUJail {
    /// The launcher's environment: fixed and minimal, QEMU needs nothing of the worker's.
    package static let launcherEnvironment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]

    /// The launcher's command with `command` in QEMU's place, no cgroup, no proc, for a jail whose
    /// root mount point, socket directory and root filesystem are `directory`'s `root`, `run` and
    /// `rootfs`: what `codebench-bench vm` times to price the launcher alone.
    package func launchCommand(in directory: String, uid: UInt32, command: [String]) -> (executable: String, arguments: [String]) {
        let launcher = QEMUJailLauncher(
            jail: self, qemuPath: command[0], rootMountPoint: directory + "/root", socketDirectory: directory + "/run", kernelPath: nil,
            rootfsPath: directory + "/rootfs", uid: uid, bindKVM: false, fileSizeLimit: maximumFileSizeBytes)
        return (launcher.executable, launcher.arguments(qemuArguments: Array(command.dropFirst())))
    }
}
