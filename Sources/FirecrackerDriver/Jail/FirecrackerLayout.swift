import MicroVM

/// Where one VM's files live, as the host sees them, and the same paths as Firecracker sees them
/// (identical without the jailer; relative to the chroot with it).
public struct FirecrackerLayout: Sendable, Equatable {
    /// `sun_path` is 108 bytes including the terminating NUL.
    public static let maximumSocketPathBytes = 107

    public var vmID: String
    /// Everything the driver created for the VM; removed with it.
    public var ownedDirectory: String
    /// What Firecracker sees as `/` (the chroot), or nil when it runs unjailed.
    public var chrootDirectory: String?

    public var apiSocket: String
    public var vsockSocket: String
    public var logFIFO: String
    public var metricsFIFO: String
    /// Host paths of the kernel and root filesystem Firecracker opens (links inside the jail, or the image itself).
    public var kernel: String
    public var rootfs: String

    /// Unjailed: a private directory `<runtime>/fc-<id>`; the image is used in place (read-only, shared, no copy).
    public static func plain(runtimeDirectory: String, vmID: String, image: GuestImage) -> FirecrackerLayout {
        plain(directory: runtimeDirectory.trimmingTrailingSlashes + "/fc-" + vmID, vmID: vmID, image: image)
    }

    /// Unjailed, in an existing private directory.
    public static func plain(directory: String, vmID: String, image: GuestImage) -> FirecrackerLayout {
        FirecrackerLayout(
            vmID: vmID, ownedDirectory: directory, chrootDirectory: nil,
            apiSocket: directory + "/fc.sock", vsockSocket: directory + "/v.sock",
            logFIFO: directory + "/log.fifo", metricsFIFO: directory + "/metrics.fifo",
            kernel: image.kernelPath, rootfs: image.rootfsPath)
    }

    /// Jailed: the jailer's own layout, `<chroot_base>/<exec_file_name>/<id>/root`, with the API socket
    /// at Firecracker's documented default `/run/firecracker.socket` inside it.
    public static func jailed(chrootBaseDirectory: String, execFileName: String, vmID: String) -> FirecrackerLayout {
        let owned = chrootBaseDirectory.trimmingTrailingSlashes + "/" + execFileName + "/" + vmID
        let root = owned + "/root"
        return FirecrackerLayout(
            vmID: vmID, ownedDirectory: owned, chrootDirectory: root,
            apiSocket: root + "/run/firecracker.socket", vsockSocket: root + "/v.sock",
            logFIFO: root + "/log.fifo", metricsFIFO: root + "/metrics.fifo",
            kernel: root + "/vmlinux", rootfs: root + "/rootfs.ext4")
    }

    /// Where a template writes its snapshot and a restored VM finds it: inside the VM's own
    /// directory (the chroot when jailed), because a jailed Firecracker sees nothing else.
    public var snapshotState: String { (chrootDirectory ?? ownedDirectory) + "/snapshot.state" }
    public var snapshotMemory: String { (chrootDirectory ?? ownedDirectory) + "/snapshot.mem" }

    /// `hostPath` as Firecracker sees it.
    public func inVMM(_ hostPath: String) -> String {
        guard let chrootDirectory, hostPath.hasPrefix(chrootDirectory + "/") else { return hostPath }
        return String(hostPath.dropFirst(chrootDirectory.count))
    }

    /// Fails with a clear message when a socket path the host must bind or connect to is too long.
    public func validateSocketPaths() throws(VMError) {
        for path in [apiSocket, vsockSocket] where path.utf8.count > Self.maximumSocketPathBytes {
            throw VMError(
                .invalidConfiguration,
                "socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow \(Self.maximumSocketPathBytes). "
                    + "Use a shorter runtime directory or chroot base (e.g. /srv/jailer) or a shorter VM id")
        }
    }
}

extension String {
    var trimmingTrailingSlashes: String {
        var text = self
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        return text
    }

    var lastPathComponent: String {
        String(split(separator: "/", omittingEmptySubsequences: true).last ?? Substring(self))
    }
}
