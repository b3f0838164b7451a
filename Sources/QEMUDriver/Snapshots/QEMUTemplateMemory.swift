import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The template's memory of a copy-on-write snapshot (``QEMUDriver/RestoreMode/copyOnWrite``).
///
/// The template VM writes its guest RAM into a fresh memfd (`share=on`); once its QEMU is dead the
/// worker writes that RAM into the snapshot directory (`memory`, sparse, 0444, recorded in
/// `memory.id`) as the snapshot's persistent copy, allocates the memfd's remaining holes, seals it
/// (``SealedMemory``) and keeps it (``TemplateMemoryCache``). A restored VM gets a sealed memfd as its descriptor 3 and maps
/// `/proc/self/fd/3` privately: never a path, never a file anything can write.
///
/// What keeps the template immutable under running VMs (docs/snapshots.md, "Guarantees of copy-on-write"):
/// - the memfd's seals: the kernel refuses every write, resize and hole punch, from any process;
/// - a process that has no memfd for the snapshot yet copies one from `memory` only after checking
///   the open file against its record: a file whose size, mtime, inode, owner or mode differ is never
///   copied nor mapped; the restore fails before QEMU starts, the snapshot is removed and the VM boots cold.
enum QEMUTemplateMemory {
    /// The memory file in the snapshot directory.
    static let fileName = "memory"
    /// `key=<snapshot name> size=… mtime=… inode=…` of the file when it was written.
    static let identityFileName = "memory.id"
    /// QEMU's descriptor of the memfd (template and restored VMs alike), and of a restored VM's
    /// device state: the spawned VMM inherits them as its 3 and 4 (``VMMProcess/spawn``), and the
    /// jail's launcher passes them on to QEMU.
    static let memoryFD: CInt = 3
    static let stateFD: CInt = 4
    /// What QEMU 7.2's `memory-backend-file` opens: it takes a path only (`open(mem-path, O_RDWR)`),
    /// no descriptor; `/proc/self/fd/3` reopens the inherited memfd. Jailed, the launcher keeps a
    /// proc of the jail's PID namespace mounted for it (``QEMUJailLauncher``).
    static let memoryPath = "/proc/self/fd/\(memoryFD)"

    /// The record of `info` for the snapshot `name`.
    static func identity(snapshotName: String, _ info: stat) -> String {
        "key=\(snapshotName) size=\(info.st_size) mtime=\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) inode=\(info.st_ino)"
    }

    /// Whether the file at `path` is still the one recorded as `identity` (a regular file, 0444,
    /// owned by this process's uid).
    static func matches(path: String, identity recorded: String) -> Bool {
        let name = path.split(separator: "/").dropLast().last.map(String.init) ?? ""
        var info = stat()
        return lstat(path, &info) == 0 && isSealedFile(info) && identity(snapshotName: name, info) == recorded
    }

    private static func isSealedFile(_ info: stat) -> Bool {
        (info.st_mode & S_IFMT) == S_IFREG && info.st_mode & 0o7777 == 0o444 && info.st_uid == geteuid()
    }

    /// A fresh memfd for a template VM of `memoryMiB`, which QEMU maps shared and writes the guest's RAM into.
    static func templateMemory(memoryMiB: Int) throws -> CInt {
        do {
            return try SealedMemory.create(name: "codebench-template", size: memoryMiB << 20)
        } catch {
            throw VMError(.bootFailed, "cannot create the template's memory: \(error)")
        }
    }

    /// After the template's QEMU is dead: writes its RAM (`memory`, the template's memfd) into the
    /// snapshot's `partial` directory, read-only, records it, and seals and keeps it for this process's
    /// restores. The caller's descriptor is closed.
    static func persist(_ memory: CInt, size: Int, into partial: String, snapshotName: String) throws {
        defer { close(memory) }
        let path = partial + "/" + fileName
        let file = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o400)
        guard file >= 0 else { throw VMError(.bootFailed, "cannot create the template's memory file \(path): \(lastError())") }
        var info = stat()
        do {
            defer { close(file) }
            guard ftruncate(file, off_t(size)) == 0 else { throw VMError(.bootFailed, "cannot size \(path): \(lastError())") }
            try SealedMemory.copyData(from: memory, to: file, size: size)
            guard fsync(file) == 0, fchmod(file, 0o444) == 0, fstat(file, &info) == 0 else {
                throw VMError(.bootFailed, "cannot write the template's memory file \(path): \(lastError())")
            }
        } catch let error as SealedMemory.Failure {
            throw VMError(.bootFailed, "cannot write the template's memory file \(path): \(error)")
        }
        let identity = identity(snapshotName: snapshotName, info)
        try writeSmallFile(partial + "/" + identityFileName, identity)
        // Kept for this process's restores, fully allocated and sealed like a copy from the file.
        // Sealing fails (EBUSY) while any process still maps it shared: then the first restore
        // copies it from the file instead.
        let final = String(partial.dropLast(".partial".count)) + "/" + fileName
        guard SealedMemory.allocate(memory, length: size) == 0, (try? SealedMemory.seal(memory)) != nil else { return }
        let cached = TemplateMemoryCache.shared.insert(fcntl(memory, F_DUPFD_CLOEXEC, 0), path: final, identity: identity)
        if cached >= 0 { close(cached) }
    }

    /// The descriptors a copy-on-write restore hands to QEMU; the caller closes both once QEMU is spawned.
    struct OpenedSnapshot {
        /// A sealed memfd of the template's RAM (the process's cached one, duplicated).
        var memory: CInt
        var state: CInt
        /// The memory file's record (`memory.id`) they were checked against.
        var identity: String
    }

    /// A snapshot whose memory file no longer matches its record.
    struct Changed: Error, CustomStringConvertible {
        var description: String
    }

    /// The sealed memfd and the state of the snapshot in `directory`, after checking that its memory
    /// file is the one written there. Throws ``Changed`` when it is not.
    static func open(snapshot directory: String) throws -> OpenedSnapshot {
        let name = directory.split(separator: "/").last.map(String.init) ?? ""
        let memoryPath = directory + "/" + fileName
        let file = Glibc.open(memoryPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard file >= 0 else { throw Changed(description: "cannot open \(memoryPath): \(lastError())") }
        defer { close(file) }
        var info = stat()
        let recorded = readSmallFile(directory + "/" + identityFileName)
        guard fstat(file, &info) == 0, isSealedFile(info), let recorded, recorded == identity(snapshotName: name, info) else {
            if let recorded { TemplateMemoryCache.shared.remove(recorded) }
            let found = identity(snapshotName: name, info) + " mode=\(String(info.st_mode & 0o7777, radix: 8)) uid=\(info.st_uid)"
            throw Changed(description: "the snapshot's memory file \(memoryPath) is not the one written there (recorded: \(recorded ?? "none"); found: \(found)); it is not mapped")
        }
        let memory = try TemplateMemoryCache.shared.descriptor(for: recorded) ?? copy(file, size: Int(info.st_size), path: memoryPath, identity: recorded)
        let state = Glibc.open(directory + "/" + QEMUDriver.snapshotStateFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard state >= 0 else {
            close(memory)
            throw Changed(description: "cannot open the snapshot's state in \(directory): \(lastError())")
        }
        return OpenedSnapshot(memory: memory, state: state, identity: recorded)
    }

    /// The first restore of a snapshot in this process: the checked file's content into a sealed memfd.
    private static func copy(_ file: CInt, size: Int, path: String, identity: String) throws -> CInt {
        let sealed: CInt
        do {
            sealed = try SealedMemory.copy(of: file, size: size, name: "codebench-template")
        } catch {
            throw VMError(.bootFailed, "cannot load the template's memory \(path): \(error)")
        }
        let memory = TemplateMemoryCache.shared.insert(sealed, path: path, identity: identity)
        guard memory >= 0 else { throw VMError(.bootFailed, "cannot duplicate the template's memfd: \(lastError())") }
        return memory
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
