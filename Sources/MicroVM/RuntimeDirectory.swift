import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The per-VM directory of sockets and files under ``VMConfiguration/runtimeDirectory``.
///
/// Its name is short because Unix socket paths are limited to 107 bytes. It records the owning
/// process (`owner`) and, once spawned, the VMM (`vmm`), each as pid and start time, so a later
/// process can clean up after one that crashed: ``cleanLeftovers(under:logger:)`` removes the
/// directories whose owner is dead and kills their VMM if it still runs.
public struct RuntimeDirectory: Sendable, Hashable {
    /// Longest usable Unix socket path (sun_path is 108 bytes including the terminating NUL).
    public static let maximumSocketPathBytes = 107
    static let ownerFile = "owner"
    static let vmmFile = "vmm"

    /// Absolute path of the directory.
    public let path: String

    /// Creates a fresh, private (0700) directory `<root>/<prefix>XXXXXX`, creating `root` if needed.
    public static func create(under root: String, prefix: String = "vm") throws -> RuntimeDirectory {
        try makeDirectories(root)
        var template = Array("\(root)/\(prefix)XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else {
            throw VMError(.invalidConfiguration, "cannot create a runtime directory under \(root): \(String(cString: strerror(errno)))")
        }
        let directory = RuntimeDirectory(path: template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        do {
            try writeSmallFile(directory.file(ownerFile), ProcessIdentity.current.description + "\n")
        } catch {
            directory.remove()
            throw error
        }
        return directory
    }

    /// The path of a file in the directory.
    public func file(_ name: String) -> String { path + "/" + name }

    /// The path of a socket in the directory; throws when it would not fit in sun_path.
    public func socketPath(_ name: String) throws -> String {
        let socket = file(name)
        guard socket.utf8.count <= Self.maximumSocketPathBytes else {
            throw VMError(.invalidConfiguration, "socket path \(socket) is longer than \(Self.maximumSocketPathBytes) bytes; use a shorter runtime directory")
        }
        return socket
    }

    /// Records the VMM so that a later run can kill it if this process dies without tearing down.
    public func recordVMM(pid: pid_t) {
        let identity = ProcessIdentity.of(pid: pid) ?? ProcessIdentity(pid: pid, startTime: 0)
        try? writeSmallFile(file(Self.vmmFile), identity.description + "\n")
    }

    /// Removes the directory and everything in it (best effort, never throws).
    public func remove() {
        Self.removeTree(path)
    }

    /// Removes directories under `root` left by processes that died without tearing down their VMs,
    /// SIGKILLing those VMMs (and their process groups) first. Directories of live owners are left
    /// alone, so several workers can share `root`. Returns how many directories were removed.
    @discardableResult
    public static func cleanLeftovers(under root: String, logger: Logger) -> Int {
        guard let dir = opendir(root) else { return 0 }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)

        var removed = 0
        for name in names {
            let path = root + "/" + name
            guard isDirectory(path) else { continue }
            let owner = readSmallFile(path + "/" + ownerFile).flatMap(ProcessIdentity.init(parsing:))
            // A directory without a readable owner is being created right now, or is not ours: skip.
            guard let owner, !owner.isAlive else { continue }
            if let vmm = readSmallFile(path + "/" + vmmFile).flatMap(ProcessIdentity.init(parsing:)), vmm.isAlive {
                logger.warning(
                    "killing a VMM left running by a dead process",
                    metadata: ["vmm_pid": "\(vmm.pid)", "owner_pid": "\(owner.pid)", "runtime_dir": "\(path)"])
                if getpgid(vmm.pid) == vmm.pid { kill(-vmm.pid, SIGKILL) }
                kill(vmm.pid, SIGKILL)
            }
            logger.info("removing a leftover runtime directory", metadata: ["runtime_dir": "\(path)", "owner_pid": "\(owner.pid)"])
            removeTree(path)
            removed += 1
        }
        return removed
    }

    package static func makeDirectories(_ path: String) throws {
        guard !path.isEmpty, !isDirectory(path) else { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw VMError(.invalidConfiguration, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Deletes a directory tree without following symlinks (only our own flat directories are expected).
    package static func removeTree(_ path: String) {
        for name in entries(of: path) {
            let child = path + "/" + name
            if isDirectory(child) { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }

    /// Names in a directory, without `.` and `..`; empty when it cannot be read.
    package static func entries(of path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
