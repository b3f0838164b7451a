import Logging
import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// Saved VM states on disk, one directory per ``SnapshotKey``: `<root>/<name>/key` (the key's full
/// text) and `<root>/<name>/state` (QEMU's migration stream). A state appears only complete (written
/// beside it, then renamed), and creation is serialised across processes with `flock` on
/// `<root>/<name>.lock`, so workers sharing a host make each snapshot once.
struct SnapshotStore: Sendable {
    let root: String

    /// Rejects roots that QEMU's `exec:` migration URI (a shell command line) could misread.
    init(root: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-")
        guard root.hasPrefix("/"), root.allSatisfy(allowed.contains), !root.contains("..") else {
            throw VMError(.invalidConfiguration, "the snapshot directory must be an absolute plain path ([A-Za-z0-9/._-]), not \(root)")
        }
        self.root = root
    }

    func directory(for key: SnapshotKey) -> String { root + "/" + key.name }
    func statePath(for key: SnapshotKey) -> String { directory(for: key) + "/state" }

    /// The saved state of `key` if a complete one with exactly this key exists.
    func lookup(_ key: SnapshotKey) -> String? {
        let state = statePath(for: key)
        var info = stat()
        guard readSmallFile(directory(for: key) + "/key") == key.text, stat(state, &info) == 0, info.st_size > 0 else { return nil }
        return state
    }

    /// Returns the state of `key`, calling `save` to write one to the given path if there is none.
    /// Holds the cross-process lock while it checks and saves.
    func obtain(_ key: SnapshotKey, logger: Logger, save: (String) async throws -> Void) async throws -> (path: String, created: Bool) {
        if let existing = lookup(key) { return (existing, false) }
        try RuntimeDirectory.makeDirectories(root)
        chmod(root, 0o700)
        let lock = try await FileLock.acquire(root + "/" + key.name + ".lock")
        defer { lock.release() }
        if let existing = lookup(key) { return (existing, false) }

        let directory = directory(for: key)
        RuntimeDirectory.removeTree(directory)
        guard mkdir(directory, 0o700) == 0 else {
            throw VMError(.invalidConfiguration, "cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        let partial = directory + "/state.partial"
        do {
            try await save(partial)
            var info = stat()
            guard stat(partial, &info) == 0, info.st_size > 0 else {
                throw VMError(.bootFailed, "QEMU reported the snapshot saved, but \(partial) is empty")
            }
            try writeSmallFile(directory + "/key", key.text)
            guard rename(partial, statePath(for: key)) == 0 else {
                throw VMError(.invalidConfiguration, "cannot rename \(partial): \(String(cString: strerror(errno)))")
            }
        } catch {
            RuntimeDirectory.removeTree(directory)
            throw error
        }
        logger.info("saved a VM snapshot", metadata: ["snapshot": "\(directory)"])
        return (statePath(for: key), true)
    }

    /// Removes the snapshot of `key` (one that failed to restore), so the next VM makes a new one.
    func invalidate(_ key: SnapshotKey) {
        RuntimeDirectory.removeTree(directory(for: key))
    }
}

/// An exclusive `flock` on a file, polled so no thread blocks while another process holds it.
struct FileLock: Sendable {
    let fd: Int32

    static func acquire(_ path: String, poll interval: Duration = .milliseconds(20)) async throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VMError(.invalidConfiguration, "cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw VMError(.invalidConfiguration, "cannot lock \(path): \(message)")
            }
            do {
                try await Task.sleep(for: interval)
            } catch {
                close(fd)
                throw error
            }
        }
        return FileLock(fd: fd)
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
