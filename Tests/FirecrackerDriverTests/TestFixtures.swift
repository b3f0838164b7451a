import TestSupport
import Foundation
import Logging
import MicroVM

enum Fixtures {
    static var logger: Logger {
        var logger = Logger(label: "firecracker-tests")
        // CODEBENCH_TEST_LOG=debug shows every boot step with its duration.
        logger.logLevel = ProcessInfo.processInfo.environment["CODEBENCH_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }

    /// A stand-in guest image: the fake VMM never reads it, but the driver checks it exists.
    static func image(in directory: TemporaryDirectory) throws -> GuestImage {
        try directory.write("vmlinux", "not a kernel\n", mode: 0o444)
        try directory.write("rootfs.ext4", "not a file system\n", mode: 0o444)
        return GuestImage(kernelPath: directory.file("vmlinux"), rootfsPath: directory.file("rootfs.ext4"))
    }

    /// A `firecracker` executable standing in for the real one: it records its pid and arguments,
    /// links the API socket path it is given to the in-process ``FakeFirecracker`` (connect(2) follows
    /// symlinks), prints a line like a VMM would, and sleeps until killed. Its environment is the
    /// driver's (PATH only), so every other path is baked in.
    static func fakeBinary(in directory: TemporaryDirectory, peerSocket: String) throws -> String {
        try directory.write(
            "firecracker",
            """
            #!/bin/sh
            echo "$@" > \(directory.file("args"))
            api=""
            while [ $# -gt 0 ]; do
              if [ "$1" = "--api-sock" ]; then api="$2"; fi
              shift
            done
            echo "fake firecracker up, pid $$"
            echo $$ > \(directory.file("pid"))
            echo $$ >> \(directory.file("pids"))
            # Last: the link lets the driver connect, and a short boot may then end before this
            # shell runs again.
            ln -s \(peerSocket) "$api"
            exec sleep 600
            """, mode: 0o755)
        return directory.file("firecracker")
    }

    /// A stand-in `bin/jailer` that does what `docs/jailer.md` describes that matters to the driver:
    /// reads its arguments, forks Firecracker (as `--new-pid-ns` does) with the API socket inside
    /// `<chroot_base>/firecracker/<id>/root`, writes `<chroot>/firecracker.pid` and exits.
    static func standInJailer(in directory: TemporaryDirectory, firecracker: String) throws {
        try FileManager.default.createDirectory(atPath: directory.file("bin"), withIntermediateDirectories: true)
        try directory.write(
            "bin/jailer",
            """
            #!/bin/sh
            echo "$@" > \(directory.file("jailer-args"))
            id=""; base=""; sock=""
            while [ $# -gt 0 ]; do
              case "$1" in
                --id) id="$2"; shift ;;
                --chroot-base-dir) base="$2"; shift ;;
                --api-sock) sock="$2"; shift ;;
              esac
              shift
            done
            root="$base/firecracker/$id/root"
            [ -d "$root/run" ] || { echo "no $root/run" >&2; exit 3; }
            \(firecracker) --api-sock "$root$sock" --id "$id" &
            echo $! > "$root/firecracker.pid"
            exit 0
            """, mode: 0o755)
    }

    /// How the peer maps a jailed Firecracker's paths to the host: into the chroot of the VM the
    /// stand-in jailer started last (learnt the way an operator would, from its command line).
    static func jailedHostPath(in directory: TemporaryDirectory) -> @Sendable (String) -> String {
        let arguments = directory.file("jailer-args")
        let chrootBase = directory.file("jail")
        return { path in
            let words = ((try? String(contentsOfFile: arguments, encoding: .utf8)) ?? "").split(separator: " ")
            let id = words.firstIndex(of: "--id").map { String(words[$0 + 1]) } ?? "unknown"
            return chrootBase + "/firecracker/" + id + "/root" + path
        }
    }

    /// A `firecracker` that fails at once, the way the real one does without KVM.
    static func failingBinary(in directory: TemporaryDirectory, message: String) throws -> String {
        try directory.write(
            "firecracker",
            """
            #!/bin/sh
            echo "\(message)" >&2
            exit 1
            """, mode: 0o755)
        return directory.file("firecracker")
    }

    /// Every VMM the stand-in binary started in `directory`, in order.
    static func allPIDs(in directory: TemporaryDirectory) -> [pid_t] {
        ((try? String(contentsOfFile: directory.file("pids"), encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { pid_t($0) }
    }

    static func pidFile(in directory: TemporaryDirectory) -> pid_t? {
        (try? String(contentsOfFile: directory.file("pid"), encoding: .utf8))
            .flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// True while `pid` runs. A zombie counts as gone only if it is not our child (then init reaps
    /// it); the driver's own child must be reaped, which is part of what is tested.
    static func processExists(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = ProcessStat.of(pid: pid) else { return false }
        return !(stat.state == "Z" && stat.parent != getpid())
    }
}
