import AgentProtocol
import MicroVM
import QEMUDriver
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// Copy-on-write restores (docs/snapshots.md, "Restore modes"): every VM maps the template's
    /// memory file privately; no VM sees another's writes, the file never changes, and a file that
    /// changed on disk is never mapped.
    @Suite struct CopyOnWriteSnapshots {
        final class Store: Sendable {
            let root = "/tmp/cbq-cow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            var driver: QEMUDriver { QEMUDriver(configuration: .init(accelerator: .tcg, snapshotDirectory: root, restoreMode: .copyOnWrite)) }
            deinit { _ = try? runShell("rm -rf \(root)") }

            /// The sealed memory files, one per snapshot made.
            var memoryFiles: [String] {
                (try? runShell("ls \(root)/*/memory 2>/dev/null"))?.split(separator: "\n").map(String.init) ?? []
            }

            func run(_ command: String) async throws -> (hello: AgentHello, result: RunResult) {
                try await driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    (session.hello, try await session.run(VMTest.request(command), timeout: .seconds(20)))
                }
            }
        }

        /// Size, mtime, inode, owner and mode of a file, and a digest of its contents.
        static func fingerprint(_ path: String) throws -> String {
            try runShell("stat -c '%s %Y.%y %i %u %a' \(path) && sha256sum < \(path)")
        }

        @Test func twoClonesWritingTheSamePageEachReadBackTheirOwn() async throws {
            let store = Store()
            let first = try await store.run("true")
            #expect(first.hello.resumeNonce != nil, "the first VM was restored from the snapshot it made")
            let memory = try #require(store.memoryFiles.first, "a copy-on-write snapshot keeps the template's memory in a file")
            let directory = String(memory.dropLast("/memory".count))
            let stateBytes = Int(try runShell("stat -c %s \(directory)/state").filter(\.isNumber)) ?? .max
            #expect(stateBytes < 1 << 20, "the state holds no guest RAM: \(stateBytes) bytes")
            #expect(try runShell("stat -c %u:%a \(memory)") == "0:444", "the template's memory is read-only and the worker's")
            let before = try Self.fingerprint(memory)

            // Both VMs alive at once, restored from one template into identical guest memory, run
            // the same job at the same time: each writes its letter into a file of its work directory
            // (the same guest page in both, as both kernels start from one state), lets the other
            // write, and reads it back.
            let vm = try VMTest.configuration()
            let (jobA, jobB) = ["A", "B"].map { VMTest.request("yes \($0) | head -c 65536 > page && sleep 3 && sort -u page") }.pair
            let results = try await store.driver.withVM(vm, logger: VMTest.logger) { a in
                try await store.driver.withVM(vm, logger: VMTest.logger) { b in
                    async let resultA = a.run(jobA, timeout: .seconds(30))
                    async let resultB = b.run(jobB, timeout: .seconds(30))
                    return (a.hello, b.hello, try await [resultA, resultB])
                }
            }
            #expect(results.0.resumeNonce != nil && results.1.resumeNonce != nil, "both VMs were restored, not cold-booted")
            #expect(results.2.map(\.stdoutText) == ["A\n", "B\n"], "\(results.2.map(\.summary))")
            #expect(try Self.fingerprint(memory) == before, "the template's memory file never changes under its VMs")
            #expect(store.memoryFiles == [memory], "the snapshot was reused")
        }

        enum Change: String, CaseIterable, CustomTestStringConvertible {
            case mtime, size, anotherFile
            var testDescription: String { rawValue }

            /// As an operator's or a broken tool's change of the sealed file would look.
            func command(_ memory: String) -> String {
                switch self {
                case .mtime: "touch -d '2001-02-03 04:05:06' \(memory)"
                case .size: "truncate -s +4096 \(memory)"
                // Same size, mode and mtime, another inode: a different file put in its place.
                case .anotherFile: "cp --preserve=all \(memory) \(memory).x && mv \(memory).x \(memory)"
                }
            }
        }

        @Test(arguments: Change.allCases)
        func aMemoryFileChangedOnDiskIsNeverMappedAndTheJobStillRuns(_ change: Change) async throws {
            let store = Store()
            _ = try await store.run("true")
            let memory = try #require(store.memoryFiles.first)
            _ = try runShell(change.command(memory))

            let fallback = try await store.run("echo ran")
            #expect(fallback.result.stdoutText == "ran\n", "\(fallback.result.summary)")
            #expect(fallback.hello.resumeNonce == nil, "the job ran in a cold-booted VM, not one mapping the changed file")
            #expect(store.memoryFiles.isEmpty, "the snapshot with the changed file was removed")

            let next = try await store.run("echo warm")
            #expect(next.result.stdoutText == "warm\n", "\(next.result.summary)")
            #expect(next.hello.resumeNonce != nil, "a new snapshot was made and restored")
            #expect(store.memoryFiles.count == 1)
        }

        @Test func nothingIsLeftBehind() async throws {
            let store = Store()
            let before = VMTest.census()
            _ = try await store.run("true")
            _ = try await store.run("true")
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries == before.runtimeEntries, "\(after)")
            let partial = (try? runShell("ls -a \(store.root) | grep -c partial")) ?? ""
            #expect(partial.filter(\.isNumber) == "0", "no template memory file or partial directory is left")
            // The worker's descriptors of the snapshot's files, which each restored QEMU opened through /proc.
            let held = (try? runShell("ls -l /proc/\(getpid())/fd | grep -c \(store.root)")) ?? ""
            #expect(held.filter(\.isNumber) == "0", "no descriptor of the snapshot's files stays open")
        }
    }
}

extension Array {
    /// The first two elements, for a destructuring `let`.
    fileprivate var pair: (Element, Element) { (self[0], self[1]) }
}
