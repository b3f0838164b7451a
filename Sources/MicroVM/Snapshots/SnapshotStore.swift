import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Saved VM states on disk, one directory per ``SnapshotKey``: `<root>/<name>/key` (the key's full
/// text) and the driver's files (QEMU: `state`, its migration stream; Firecracker: its state and memory
/// files). A snapshot appears only complete (its files are written into a fresh directory that is
/// then checked), and creation is serialised across processes with `flock` on `<root>/<name>.lock`,
/// so workers sharing a host make each snapshot once.
public struct SnapshotStore: Sendable {
    public let root: String
    /// After a failed save, VMs needing the same snapshot boot cold this long before one tries again:
    /// a save that keeps failing (disk full, a broken warm-up) must not add a template boot to every job.
    public var retryAfterFailure: Duration = .seconds(300)

    /// Keys whose save failed in this process, with when.
    private static let failedSaves = Mutex<[String: ContinuousClock.Instant]>([:])

    /// Rejects roots that QEMU's `exec:` migration URI (a shell command line) could misread.
    public init(root: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-")
        guard root.hasPrefix("/"), root.allSatisfy(allowed.contains), !root.contains("..") else {
            throw VMError(.invalidConfiguration, "the snapshot directory must be an absolute plain path ([A-Za-z0-9/._-]), not \(root)")
        }
        self.root = root
    }

    /// The directory of the snapshot of `key` (complete or not).
    public func directory(for key: SnapshotKey) -> String { root + "/" + key.name }

    /// The directory of a complete snapshot with exactly this key, if there is one.
    public func lookup(_ key: SnapshotKey) -> String? {
        let directory = directory(for: key)
        return readSmallFile(directory + "/key") == key.text ? directory : nil
    }

    /// Returns the snapshot directory of `key`, calling `save` to fill a fresh directory with the
    /// driver's files if there is none. `save` writes into a private `<name>.partial` directory; the
    /// key is written last and the directory renamed into place, so a snapshot is complete or absent.
    /// Holds the cross-process lock while it checks and saves.
    public func obtain(
        _ key: SnapshotKey, logger: Logger, save: (_ directory: String) async throws -> Void
    ) async throws -> (directory: String, created: Bool) {
        if let existing = lookup(key) { return (existing, false) }
        let failureKey = directory(for: key)
        if let failedAt = Self.failedSaves.withLock({ $0[failureKey] }), ContinuousClock.now - failedAt < retryAfterFailure {
            throw VMError(
                .bootFailed,
                "saving this snapshot failed \(Int((ContinuousClock.now - failedAt).components.seconds)) s ago; next attempt after \(retryAfterFailure)")
        }
        do {
            let made = try await make(key, logger: logger, save: save)
            Self.failedSaves.withLock { _ = $0.removeValue(forKey: failureKey) }
            return made
        } catch {
            if !(error is CancellationError) && !Task.isCancelled {
                Self.failedSaves.withLock { $0[failureKey] = .now }
            }
            throw error
        }
    }

    private func make(
        _ key: SnapshotKey, logger: Logger, save: (_ directory: String) async throws -> Void
    ) async throws -> (directory: String, created: Bool) {
        try RuntimeDirectory.makeDirectories(root)
        chmod(root, 0o700)
        let lock = try await FileLock.acquire(root + "/" + key.name + ".lock")
        defer { lock.release() }
        if let existing = lookup(key) { return (existing, false) }

        let final = directory(for: key)
        let partial = final + ".partial"
        RuntimeDirectory.removeTree(partial)
        guard mkdir(partial, 0o700) == 0 else {
            throw VMError(.invalidConfiguration, "cannot create \(partial): \(String(cString: strerror(errno)))")
        }
        do {
            try await save(partial)
            try writeSmallFile(partial + "/key", key.text)
            RuntimeDirectory.removeTree(final)
            guard rename(partial, final) == 0 else {
                throw VMError(.invalidConfiguration, "cannot rename \(partial) to \(final): \(String(cString: strerror(errno)))")
            }
        } catch {
            RuntimeDirectory.removeTree(partial)
            throw error
        }
        logger.info("saved a VM snapshot", metadata: ["snapshot": "\(final)"])
        pruneStale(logger: logger)
        return (final, true)
    }

    /// One complete snapshot on disk, for reports.
    public struct Entry: Sendable {
        public var name: String
        /// The key's first line: which driver and format made it.
        public var format: String
        public var bytes: Int
        /// Its kernel, root filesystem or VMM changed or went: it will never be used again.
        public var stale: Bool
    }

    /// The complete snapshots under ``root``.
    public func entries() -> [Entry] {
        RuntimeDirectory.entries(of: root).sorted().compactMap { name in
            let directory = root + "/" + name
            guard !name.hasSuffix(".partial"), let text = readSmallFile(directory + "/key") else { return nil }
            let bytes = RuntimeDirectory.entries(of: directory).reduce(0) { total, file in
                var info = stat()
                return total + (stat(directory + "/" + file, &info) == 0 ? Int(info.st_size) : 0)
            }
            let format = text.split(separator: "\n").first.map(String.init) ?? "?"
            return Entry(name: name, format: format, bytes: bytes, stale: SnapshotKey.isStale(text))
        }
    }

    /// Removes snapshots whose kernel, root filesystem or VMM has changed or gone since they were made
    /// (an image rebuild leaves one behind each time), with their lock files, and what a crashed save
    /// left: a `.partial` directory, a lock file with no snapshot. A VM still loading a removed
    /// snapshot reads an unlinked file, which Linux keeps readable until it is closed. Each goes only
    /// under its key's lock, taken without waiting: a save in progress (in any process) is skipped.
    public func pruneStale(logger: Logger) {
        let names = Set(RuntimeDirectory.entries(of: root))
        for entry in names.sorted() {
            let name = entry.hasSuffix(".lock") ? String(entry.dropLast(5)) : entry.hasSuffix(".partial") ? String(entry.dropLast(8)) : entry
            let directory = root + "/" + name
            let removable: Bool
            if entry.hasSuffix(".lock") {
                removable = !names.contains(name) && !names.contains(name + ".partial")
            } else if entry.hasSuffix(".partial") {
                removable = true
            } else {
                removable = readSmallFile(directory + "/key").map(SnapshotKey.isStale) ?? false
            }
            guard removable, let lock = FileLock.acquireIfFree(directory + ".lock") else { continue }
            RuntimeDirectory.removeTree(directory + ".partial")
            if entry == name {
                RuntimeDirectory.removeTree(directory)
                logger.info("removed a stale VM snapshot", metadata: ["snapshot": "\(directory)"])
            }
            // A complete snapshot keeps its lock file; a key with nothing left loses it.
            if access(directory, F_OK) != 0 { lock.releaseRemovingFile() } else { lock.release() }
        }
    }

    /// Removes the snapshot of `key` (one that failed to restore), so the next VM makes a new one.
    public func invalidate(_ key: SnapshotKey) {
        RuntimeDirectory.removeTree(directory(for: key))
    }
}

/// An exclusive `flock` on a file, polled so no thread blocks while another process holds it.
///
/// A lock file is unlinked only by a holder (``releaseRemovingFile()``). Whoever opened it before
/// that and gets the lock after it holds a file no longer at the path, which excludes nobody: so a
/// lock counts only once the path still names the locked file, and is otherwise taken again.
public struct FileLock: Sendable {
    public let fd: Int32
    public let path: String

    public static func acquire(_ path: String, poll interval: Duration = .milliseconds(20)) async throws -> FileLock {
        while true {
            let fd = try openLockFile(path)
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
            if isCurrent(fd, path) { return FileLock(fd: fd, path: path) }
            close(fd)
        }
    }

    /// The lock if nobody holds it now; nil if someone does (or the file cannot be opened).
    public static func acquireIfFree(_ path: String) -> FileLock? {
        guard let fd = try? openLockFile(path) else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, isCurrent(fd, path) else {
            close(fd)
            return nil
        }
        return FileLock(fd: fd, path: path)
    }

    public func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Unlinks the lock file while still holding it, then releases it.
    public func releaseRemovingFile() {
        unlink(path)
        release()
    }

    private static func openLockFile(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VMError(.invalidConfiguration, "cannot open \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    private static func isCurrent(_ fd: Int32, _ path: String) -> Bool {
        var held = stat()
        var named = stat()
        return fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino
    }
}
