import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The template's memory file of a copy-on-write snapshot (``QEMUDriver/RestoreMode/copyOnWrite``):
/// written once by the template VM (`share=on`), then sealed into the snapshot directory and never
/// opened for writing again; every restored VM maps it privately.
///
/// What keeps it immutable under running VMs (docs/snapshots.md, "Restore modes"):
/// - it is made under the store's lock at a temporary name, and renamed into the snapshot only once
///   the template QEMU is dead, made read-only (0444) and recorded (``identity``) beside it;
/// - a VM is given the inode the worker opened and checked (`/proc/<worker>/fd/<n>`), never the path,
///   so a file replaced, pruned or re-saved between the check and QEMU's open cannot be mapped;
/// - a file whose size, mtime, inode, owner or mode differ from the record is never mapped: the
///   restore fails before QEMU starts, the snapshot is removed and the VM boots cold.
enum QEMUTemplateMemory {
    /// The memory file in the snapshot directory.
    static let fileName = "memory"
    /// `key=<snapshot name> size=… mtime=… inode=…` of the file when it was sealed.
    static let identityFileName = "memory.id"

    /// Where the template VM of snapshot `name` writes its memory until it is sealed: beside the
    /// snapshot directories, on the same file system, so that sealing is a rename.
    static func temporaryPath(root: String, snapshotName: String) -> String {
        root + "/" + snapshotName + ".memory.partial"
    }

    /// The record of `info` for the snapshot `name`.
    static func identity(snapshotName: String, _ info: stat) -> String {
        "key=\(snapshotName) size=\(info.st_size) mtime=\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) inode=\(info.st_ino)"
    }

    /// Moves the dead template's memory file into the store's `partial` directory of snapshot `name`,
    /// read-only, and records what it is.
    static func seal(from temporaryPath: String, into partial: String, snapshotName: String) throws {
        let path = partial + "/" + fileName
        guard rename(temporaryPath, path) == 0 else {
            throw VMError(.bootFailed, "cannot move the template's memory file \(temporaryPath) to \(path): \(lastError())")
        }
        var info = stat()
        guard chmod(path, 0o444) == 0, stat(path, &info) == 0, info.st_size > 0 else {
            throw VMError(.bootFailed, "cannot seal the template's memory file \(path): \(lastError())")
        }
        try writeSmallFile(partial + "/" + identityFileName, identity(snapshotName: snapshotName, info))
    }

    /// The opened, checked files of a copy-on-write snapshot: QEMU reads both through the worker's
    /// descriptors, which the caller closes once QEMU has loaded them.
    struct OpenedSnapshot {
        var memory: CInt
        var state: CInt
    }

    /// A sealed memory file that no longer matches its record.
    struct Changed: Error, CustomStringConvertible {
        var description: String
    }

    /// Opens the memory file and the state of the snapshot in `directory`, after checking that the
    /// memory file is the one sealed there. Throws ``Changed`` when it is not.
    static func open(snapshot directory: String) throws -> OpenedSnapshot {
        let name = directory.split(separator: "/").last.map(String.init) ?? ""
        let memoryPath = directory + "/" + fileName
        let memory = Glibc.open(memoryPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard memory >= 0 else { throw Changed(description: "cannot open \(memoryPath): \(lastError())") }
        var info = stat()
        let recorded = readSmallFile(directory + "/" + identityFileName)
        guard fstat(memory, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_mode & 0o7777 == 0o444, info.st_uid == geteuid(),
            recorded == identity(snapshotName: name, info)
        else {
            close(memory)
            let found = identity(snapshotName: name, info) + " mode=\(String(info.st_mode & 0o7777, radix: 8)) uid=\(info.st_uid)"
            throw Changed(description: "the snapshot's memory file \(memoryPath) is not the one sealed there (recorded: \(recorded ?? "none"); found: \(found)); it is not mapped")
        }
        let state = Glibc.open(directory + "/" + QEMUDriver.snapshotStateFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard state >= 0 else {
            close(memory)
            throw Changed(description: "cannot open the snapshot's state in \(directory): \(lastError())")
        }
        return OpenedSnapshot(memory: memory, state: state)
    }

    /// How QEMU (root, unjailed) reaches a descriptor of the worker: the very inode it checked.
    static func procPath(of fd: CInt) -> String { "/proc/\(getpid())/fd/\(fd)" }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
