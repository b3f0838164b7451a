#if canImport(Glibc)
import Glibc
#endif

/// The command that starts one jailed QEMU. Pure, so it can be checked without booting.
///
/// The worker spawns (in its own process group, as ``VMMProcess`` does for every VMM):
///
///     setpriv --pdeathsig=KILL -- unshare --mount --pid --fork --ipc --uts --net --kill-child=KILL
///         --propagation=private -- /bin/sh -c <script> <arguments> -- qemu-system-x86_64 <QEMU arguments>
///
/// - `setpriv --pdeathsig` makes the worker's own child (which becomes `unshare`) die with the worker.
/// - `unshare --fork` waits for its child, PID 1 of the new PID namespace, and reports its exit as
///   its own (re-raising a signal); `--kill-child` SIGKILLs that child when `unshare` dies.
/// - The script (as root, in the new mount namespace) moves itself into the VM's cgroup, builds the
///   root on a small tmpfs (``QEMUJail/Path``), opens the snapshot descriptor (streamed restores;
///   a copy-on-write VM's memfd and state arrive as descriptors 3 and 4 and pass through), mounts
///   a pid-only proc of the new PID namespace (kept for copy-on-write VMs), `pivot_root`s into it,
///   remounts it read-only and execs `prlimit` → `setpriv` (uid, gid, no groups, no capabilities in
///   any set, `no_new_privs`, parent-death signal again, since changing credentials clears it) → QEMU,
///   which stays PID 1 of its namespace: when it dies every process of the namespace dies.
/// A shell script rather than a helper binary: each step is a standard tool an operator can read
/// and run by hand, and the tools exist on every distribution QEMU does.
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

    var executable: String { jail.setprivPath }

    /// A fixed, minimal environment: QEMU and the tools need nothing of the worker's.
    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]

    /// Arguments after argv[0]; `qemuArguments` are QEMU's after its argv[0].
    func arguments(qemuArguments: [String]) -> [String] {
        // Always a network namespace of its own: a VM with network reaches only the listener the
        // worker puts in it (``NamespaceListener``).
        var arguments = ["--pdeathsig=KILL", "--", jail.unsharePath, "--mount", "--pid", "--fork", "--ipc", "--uts", "--net"]
        arguments += ["--kill-child=KILL", "--propagation=private", "--", jail.shellPath, "-c", Self.script, "codebench-jail"]
        func optional(_ value: String?) -> String { value ?? "-" }
        arguments += [
            rootMountPoint, socketDirectory, optional(kernelPath), rootfsPath, optional(incomingStatePath), keepsProc ? "proc" : "-",
            cgroupProcsFiles.isEmpty ? "-" : cgroupProcsFiles.joined(separator: ":"),
            String(uid), String(jail.gid), groups.isEmpty ? "-" : groups.map(String.init).joined(separator: ","),
            String(fileSizeLimit), String(jail.maximumOpenFiles), bindKVM ? "kvm" : "-",
        ]
        return arguments + ["--", qemuPath] + qemuArguments
    }

    /// The launcher script. Paths arrive as positional arguments (never interpolated into the script),
    /// lists separated by `:`; `-` means none.
    static let script = #"""
        set -eu
        root=$1 run=$2 kernel=$3 rootfs=$4 incoming=$5 keepproc=$6 cgroups=$7
        uid=$8 gid=$9 groups=${10} fsize=${11} nofile=${12} kvm=${13}
        shift 13
        [ "$1" = -- ] && shift
        IFS=:
        if [ "$cgroups" != - ]; then for procs in $cgroups; do echo $$ > "$procs"; done; fi
        unset IFS
        mount -t tmpfs -o size=256k,mode=755,nosuid,nodev codebench-jail "$root"
        cd "$root"
        mkdir usr vm dev run run/vm .old proc
        # One cp for the merged-/usr links (cp -P copies a link as a link): each tool is an exec,
        # and execs are most of the launcher's cost (docs/security.md, "The jail's cost").
        links=
        for link in bin lib lib64 sbin; do if [ -L "/$link" ]; then links="$links /$link"; fi; done
        if [ -n "$links" ]; then cp -P $links .; fi
        bind() { # source target options; nodev unless the options name dev (device nodes)
          if [ ! -e "$2" ]; then : > "$2"; fi
          case "$3" in *dev*) opts="nosuid,$3" ;; *) opts="nosuid,nodev,$3" ;; esac
          # util-linux >= 2.27 applies the options with a second, remounting mount(2) itself.
          mount --bind -o "$opts" "$1" "$2"
        }
        bind /usr usr ro
        if [ "$kernel" != - ]; then bind "$kernel" vm/kernel ro,noexec; fi
        bind "$rootfs" vm/rootfs ro,noexec
        bind "$run" run/vm noexec
        bind /dev/null dev/null dev,noexec
        bind /dev/urandom dev/urandom dev,ro,noexec
        if [ "$kvm" = kvm ]; then bind /dev/kvm dev/kvm dev,noexec; fi
        if [ "$incoming" != - ]; then exec 3< "$incoming"; fi
        # umount and mount read /proc/self/mountinfo: a proc of the new PID namespace showing only its
        # processes' own directories; it stays for QEMU only when QEMU must reopen a memfd through it.
        mount -t proc -o nosuid,nodev,noexec,hidepid=invisible,subset=pid proc proc
        pivot_root . .old
        umount -l /.old
        rmdir /.old
        mount -o remount,bind,ro,nosuid,nodev /
        if [ "$keepproc" != proc ]; then umount /proc; fi
        if [ "$groups" = - ]; then groupopt=--clear-groups; else groupopt=--groups=$groups; fi
        exec prlimit --fsize="$fsize" --nofile="$nofile" -- \
          setpriv --reuid="$uid" --regid="$gid" "$groupopt" --inh-caps=-all --bounding-set=-all \
          --no-new-privs --pdeathsig=KILL -- "$@"
        """#
}
