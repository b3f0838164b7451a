import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One sealed memfd (``SealedMemory``) per copy-on-write snapshot, for the whole process: the
/// template's RAM is copied from the snapshot's file once, not per restore, and every VM of this
/// process maps the same pages.
///
/// An entry is keyed by the memory file's identity record (``QEMUTemplateMemory/identity(snapshotName:_:)``:
/// snapshot name, size, mtime, inode), so a re-saved or replaced file never finds the old memfd.
/// Entries whose file is gone or changed on disk (the snapshot was refused, pruned or removed by
/// hand) are closed at the next lookup or insert: the cache holds at most the live snapshots' RAM.
/// A VM that already mapped a dropped memfd keeps its mapping (and the pages) until it exits.
final class TemplateMemoryCache: Sendable {
    static let shared = TemplateMemoryCache()

    private struct Entry {
        /// The snapshot's memory file, re-checked against ``identity`` to drop stale entries.
        var path: String
        var identity: String
        var fd: CInt
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// A descriptor of the memfd recorded under `identity`, if any: a duplicate the caller owns and
    /// closes, so dropping the entry meanwhile cannot close (and let the kernel reuse) a number the
    /// caller is about to hand to QEMU.
    func descriptor(for identity: String) -> CInt? {
        entries.withLock { entries in
            Self.dropStale(&entries)
            guard let entry = entries[identity] else { return nil }
            let copy = fcntl(entry.fd, F_DUPFD_CLOEXEC, 0)
            return copy >= 0 ? copy : nil
        }
    }

    /// Records `fd`, a sealed memfd holding the file at `path` (whose record is `identity`); the
    /// cache owns it from now on. Returns a duplicate for the caller. When another task recorded the
    /// same snapshot first (two VMs restored at once on a fresh process), `fd` is closed and theirs
    /// is used.
    func insert(_ fd: CInt, path: String, identity: String) -> CInt {
        guard fd >= 0 else { return -1 }
        return entries.withLock { entries in
            Self.dropStale(&entries)
            if let existing = entries[identity] {
                close(fd)
                return fcntl(existing.fd, F_DUPFD_CLOEXEC, 0)
            }
            entries[identity] = Entry(path: path, identity: identity, fd: fd)
            return fcntl(fd, F_DUPFD_CLOEXEC, 0)
        }
    }

    /// Closes the entry of `identity`, if there is one.
    func remove(_ identity: String) {
        entries.withLock { entries in
            if let entry = entries.removeValue(forKey: identity) { close(entry.fd) }
        }
    }

    /// Identities of the memfds held now (tests).
    var identities: [String] { entries.withLock { Array($0.keys) } }

    func usage() -> [QEMUDriver.TemplateMemoryUse] {
        entries.withLock { entries in
            entries.values.map { entry in
                var info = stat()
                _ = fstat(entry.fd, &info)
                let name = entry.path.split(separator: "/").dropLast().last.map(String.init) ?? "?"
                return QEMUDriver.TemplateMemoryUse(snapshot: name, sizeBytes: Int(info.st_size), allocatedBytes: Int(info.st_blocks) * 512)
            }.sorted { $0.snapshot < $1.snapshot }
        }
    }

    /// One `stat` per entry: a worker has one snapshot per VM shape, usually one.
    private static func dropStale(_ entries: inout [String: Entry]) {
        for (key, entry) in entries where !QEMUTemplateMemory.matches(path: entry.path, identity: entry.identity) {
            close(entry.fd)
            entries.removeValue(forKey: key)
        }
    }
}

extension QEMUDriver {
    /// One copy-on-write snapshot's sealed memory held by this process (docs/snapshots.md, "Where
    /// the template's memory lives").
    public struct TemplateMemoryUse: Sendable {
        /// The snapshot's name (its key's hash).
        public var snapshot: String
        /// The guest's memory size.
        public var sizeBytes: Int
        /// RAM the memfd takes (`st_blocks`): all of ``sizeBytes``, allocated when it is filled, so
        /// that no VM's cgroup is ever charged for a page of it (``SealedMemory/copy(of:size:name:)``).
        public var allocatedBytes: Int
    }

    /// The sealed memfds this process holds, one per copy-on-write snapshot it restored from.
    public static func templateMemoryInUse() -> [TemplateMemoryUse] {
        TemplateMemoryCache.shared.usage()
    }
}
