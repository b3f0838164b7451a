#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import MicroVM

/// Creates and removes the files of one VM: its private directory (or jail), the FIFOs Firecracker
/// logs into, and (jailed) the kernel and root filesystem linked into the chroot.
enum JailPreparation {
    /// Unjailed: the two FIFOs in the VM's private directory. The image stays where it is.
    static func preparePlain(_ layout: FirecrackerLayout) throws(VMError) {
        do {
            try FileSystem.makeFIFO(layout.logFIFO)
            try FileSystem.makeFIFO(layout.metricsFIFO)
        } catch {
            throw VMError(.bootFailed, "cannot prepare the runtime directory: \(error)")
        }
    }

    /// Jailed: `<chroot_base>/firecracker/<id>/root` with `run/` for the API socket, the FIFOs and the
    /// kernel and root filesystem, all usable by `uid:gid` (the jailer chowns the chroot itself).
    static func prepareJail(
        _ layout: FirecrackerLayout, image: GuestImage, uid: UInt32, gid: UInt32, logger: Logger
    ) throws(VMError) {
        guard let root = layout.chrootDirectory else { return }
        do {
            let parent = String(layout.ownedDirectory.dropLast(layout.vmID.count + 1))
            try FileSystem.makeDirectories(parent, mode: 0o755)
            // The id is unique; an existing directory means a stale jail we must not reuse.
            try FileSystem.makeDirectory(layout.ownedDirectory, mode: 0o700)
            try FileSystem.makeDirectory(root, mode: 0o700)
            let run = root + "/run"
            try FileSystem.makeDirectory(run, mode: 0o700)
            try FileSystem.changeOwner(run, uid: uid, gid: gid)
            for (source, destination) in [(image.kernelPath, layout.kernel), (image.rootfsPath, layout.rootfs)] {
                let result = try FileSystem.linkOrCopy(source, to: destination, uid: uid, gid: gid)
                if result == .copied {
                    logger.warning(
                        "copied into the jail (not on the jail's file system, or not world-readable)",
                        metadata: ["source": "\(source)"])
                }
            }
            for fifo in [layout.logFIFO, layout.metricsFIFO] {
                try FileSystem.makeFIFO(fifo)
                try FileSystem.changeOwner(fifo, uid: uid, gid: gid)
            }
        } catch {
            throw VMError(.bootFailed, "cannot prepare the jail: \(error)")
        }
    }

    /// Removes everything the VM left behind. Call only after the VMM is dead.
    static func remove(_ layout: FirecrackerLayout, logger: Logger) {
        if let failure = FileSystem.removeTree(layout.ownedDirectory) {
            logger.warning("could not remove the VM directory", metadata: ["error": "\(failure)"])
        }
        if layout.chrootDirectory != nil {
            removeCgroup(parent: layout.ownedDirectory.split(separator: "/").dropLast().last.map(String.init) ?? "firecracker",
                         id: layout.vmID)
        }
    }

    /// The jailer creates `<cgroup2 mount>/<parent_cgroup>/<id>` (parent defaults to the exec file's
    /// name) and never removes it; an empty cgroup directory is removed with rmdir.
    static func removeCgroup(parent: String, id: String) {
        for mount in cgroup2Mounts() {
            rmdir(mount + "/" + parent + "/" + id)
        }
    }

    static func cgroup2Mounts() -> [String] {
        // A host with many mounts (a container node) has a long one.
        guard let text = readSmallFile("/proc/mounts", limit: 1 << 20) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            return fields.count > 2 && fields[2] == "cgroup2" ? String(fields[1]) : nil
        }
    }
}
