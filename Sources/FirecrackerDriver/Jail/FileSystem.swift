#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The few file-system operations the driver needs, as thin checked wrappers over libc
/// (no Foundation: the driver must also build where only FoundationEssentials exists).
enum FileSystem {
    struct Failure: Error, Sendable, CustomStringConvertible {
        var operation: String
        var path: String
        var errnoValue: CInt
        var description: String { "\(operation) \(path): \(String(cString: strerror(errnoValue)))" }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Failure) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, mode) != 0 && errno != EEXIST { throw Failure(operation: "mkdir", path: prefix, errnoValue: errno) }
        }
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws(Failure) {
        guard mkdir(path, mode) == 0 else { throw Failure(operation: "mkdir", path: path, errnoValue: errno) }
        // mkdir is subject to the umask; the mode is part of the security posture, so set it exactly.
        chmod(path, mode)
    }

    static func makeFIFO(_ path: String, mode: mode_t = 0o600) throws(Failure) {
        guard mkfifo(path, mode) == 0 else { throw Failure(operation: "mkfifo", path: path, errnoValue: errno) }
        chmod(path, mode)
    }

    static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) throws(Failure) {
        guard lchown(path, uid, gid) == 0 else { throw Failure(operation: "chown", path: path, errnoValue: errno) }
    }

    /// Opens a FIFO for reading without ever seeing EOF: O_RDWR keeps a writer (us) alive, so the
    /// drain does not end before the VMM opens its side, nor between its writes.
    static func openFIFOForDraining(_ path: String) throws(Failure) -> CInt {
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", path: path, errnoValue: errno) }
        return fd
    }

    enum LinkResult { case hardLinked, moved, copied }

    /// Hard-links `source` to `destination` (no copy: the image is shared read-only). Copies when the
    /// link is impossible (another file system) or would not be readable by `uid` (a hard link shares
    /// the inode, so it cannot get per-VM ownership). A bind mount is no fallback: the jailer bind-mounts
    /// the chroot non-recursively before `pivot_root`, so a mount inside it would vanish.
    static func linkOrCopy(_ source: String, to destination: String, uid: UInt32, gid: UInt32) throws(Failure) -> LinkResult {
        var info = stat()
        guard stat(source, &info) == 0 else { throw Failure(operation: "stat", path: source, errnoValue: errno) }
        let readableByAll = info.st_mode & S_IROTH != 0
        if readableByAll {
            if link(source, destination) == 0 { return .hardLinked }
            guard errno == EXDEV || errno == EPERM || errno == EMLINK else {
                throw Failure(operation: "link", path: destination, errnoValue: errno)
            }
        }
        try copy(source, to: destination, mode: 0o400)
        try changeOwner(destination, uid: uid, gid: gid)
        return .copied
    }

    /// Moves `source` to `destination` (renamed on one file system, copied across), then makes it
    /// read-only and owned by this process, whoever created it.
    static func moveOrCopy(_ source: String, to destination: String) throws(Failure) -> LinkResult {
        var result = LinkResult.moved
        if rename(source, destination) != 0 {
            guard errno == EXDEV else { throw Failure(operation: "rename", path: destination, errnoValue: errno) }
            try copy(source, to: destination, mode: 0o444)
            result = .copied
        }
        try changeOwner(destination, uid: geteuid(), gid: getegid())
        guard chmod(destination, 0o444) == 0 else { throw Failure(operation: "chmod", path: destination, errnoValue: errno) }
        return result
    }

    static func copy(_ source: String, to destination: String, mode: mode_t) throws(Failure) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure(operation: "open", path: source, errnoValue: errno) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard output >= 0 else { throw Failure(operation: "create", path: destination, errnoValue: errno) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw Failure(operation: "read", path: source, errnoValue: errno) }
            if count == 0 { return }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if result < 0 && errno == EINTR { continue }
                if result < 0 { throw Failure(operation: "write", path: destination, errnoValue: errno) }
                written += result
            }
        }
    }

    /// `rm -rf` without following symbolic links. Best effort: returns the first failure, keeps going.
    @discardableResult
    static func removeTree(_ path: String) -> Failure? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return errno == ENOENT ? nil : Failure(operation: "lstat", path: path, errnoValue: errno) }
        var firstFailure: Failure?
        if info.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafePointer(to: entry.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names {
                    if let failure = removeTree(path + "/" + name), firstFailure == nil { firstFailure = failure }
                }
            }
            if rmdir(path) != 0, firstFailure == nil { firstFailure = Failure(operation: "rmdir", path: path, errnoValue: errno) }
        } else if unlink(path) != 0, firstFailure == nil {
            firstFailure = Failure(operation: "unlink", path: path, errnoValue: errno)
        }
        return firstFailure
    }
}
