import Logging
import MicroVM
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SnapshotStoreTests {
    let root = "/tmp/cb-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    var kernel: String { root + "-kernel" }

    func key() -> SnapshotKey {
        SnapshotKey(format: "test 1", files: [("kernel", kernel)], machine: ["-m 256"])
    }

    @Test func makesASnapshotOnceAndPrunesItWhenItsFilesChange() async throws {
        defer { _ = try? runShell("rm -rf \(root) \(kernel)") }
        _ = try runShell("echo v1 > \(kernel)")
        let store = try SnapshotStore(root: root)
        var saves = 0
        let first = try await store.obtain(key(), logger: Logger(label: "test")) { directory in
            saves += 1
            _ = try runShell("echo state > \(directory)/state")
        }
        #expect(first.created)
        #expect(try runShell("cat \(first.directory)/state") == "state")
        let again = try await store.obtain(key(), logger: Logger(label: "test")) { _ in saves += 1 }
        #expect(!again.created && again.directory == first.directory && saves == 1, "made once")
        #expect(!SnapshotKey.isStale(key().text))

        // A rebuilt kernel: the old snapshot can never be looked up again and goes when the next is made.
        _ = try runShell("echo v2-longer > \(kernel)")
        #expect(SnapshotKey.isStale(try runShell("cat \(first.directory)/key") + "\n"))
        let listed = store.entries()
        #expect(listed.count == 1 && listed.first?.stale == true && listed.first?.format == "test 1", "\(listed)")
        #expect(listed.first?.bytes ?? 0 > 0)
        let second = try await store.obtain(key(), logger: Logger(label: "test")) { directory in
            _ = try runShell("echo state2 > \(directory)/state")
        }
        #expect(second.created && second.directory != first.directory)
        // The stale snapshot went with its lock file; the new one keeps its own.
        #expect(try runShell("ls \(root)").split(separator: "\n") == [Substring(key().name), Substring(key().name + ".lock")])
    }

    @Test func aCrashedSavesLeftoversGoUnlessItsSaveIsInProgress() async throws {
        defer { _ = try? runShell("rm -rf \(root) \(kernel)") }
        _ = try runShell("echo v1 > \(kernel)")
        let store = try SnapshotStore(root: root)
        // A save that died (its partial directory and lock file), a lock file of nothing, and a save
        // in progress elsewhere (its lock held).
        _ = try runShell("mkdir -p \(root)/dead.partial \(root)/busy.partial && touch \(root)/dead.partial/state \(root)/dead.lock \(root)/orphan.lock")
        let busy = try await FileLock.acquire(root + "/busy.lock")
        _ = try await store.obtain(key(), logger: Logger(label: "test")) { directory in
            _ = try runShell("echo state > \(directory)/state")
        }
        let left = try runShell("ls \(root)").split(separator: "\n").sorted()
        #expect(left == ["busy.lock", "busy.partial", Substring(key().name), Substring(key().name + ".lock")].sorted(), "\(left)")
        busy.release()
    }

    /// A lock file is unlinked by its holder; a process that opened it before and gets the lock after
    /// must not count as holding the key's lock, or two savers would run at once.
    @Test func aLockWhoseFileWasRemovedIsTakenAgain() async throws {
        defer { _ = try? runShell("rm -rf \(root)") }
        _ = try runShell("mkdir -p \(root)")
        let path = root + "/k.lock"
        let first = try await FileLock.acquire(path)
        let waiter = Task { try await FileLock.acquire(path, poll: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(50))
        first.releaseRemovingFile()
        let second = try await waiter.value
        #expect(access(path, F_OK) == 0, "the waiter holds a file at the path again")
        #expect(FileLock.acquireIfFree(path) == nil, "and nobody else can take it")
        second.release()
        let third = FileLock.acquireIfFree(path)
        #expect(third != nil)
        third?.release()
    }

    @Test func aFailedSaveLeavesNoSnapshot() async throws {
        defer { _ = try? runShell("rm -rf \(root) \(kernel)") }
        _ = try runShell("echo v1 > \(kernel)")
        let store = try SnapshotStore(root: root)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            _ = try await store.obtain(key(), logger: Logger(label: "test")) { directory in
                _ = try runShell("echo half > \(directory)/state")
                throw Boom()
            }
        }
        #expect(store.lookup(key()) == nil)
        #expect(try runShell("ls \(root)").split(separator: "\n").allSatisfy { $0.hasSuffix(".lock") })

        // Until the retry interval has passed, the next VM boots cold instead of saving again.
        var saved = false
        await #expect(throws: VMError.self) {
            _ = try await store.obtain(key(), logger: Logger(label: "test")) { _ in saved = true }
        }
        #expect(!saved)
        var eager = store
        eager.retryAfterFailure = .zero
        let made = try await eager.obtain(key(), logger: Logger(label: "test")) { directory in
            saved = true
            _ = try runShell("echo state > \(directory)/state")
        }
        #expect(saved && made.created)
    }
}
