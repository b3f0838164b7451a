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
        #expect(try runShell("ls \(root)").split(separator: "\n").filter { !$0.hasSuffix(".lock") } == [Substring(key().name)])
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
