import AgentProtocol
import MicroVM
import TestSupport
import Testing

@testable import QEMUDriver

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// Copy-on-write restores (docs/snapshots.md, "Restore modes"), jailed and unjailed: every VM
    /// maps the template's sealed memfd privately; no VM sees another's writes, neither the memfd
    /// nor the snapshot's file ever changes, and a file that changed on disk is never mapped.
    @Suite struct CopyOnWriteSnapshots {
        enum Jail: String, CaseIterable, CustomTestStringConvertible {
            case jailed, unjailed
            var testDescription: String { rawValue }
        }

        final class Store: Sendable {
            let root = "/tmp/cbq-cow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let driver: QEMUDriver

            init(_ jail: Jail) {
                driver = QEMUDriver(
                    configuration: .init(
                        accelerator: .tcg, snapshotDirectory: root, restoreMode: .copyOnWrite, jail: jail == .jailed ? QEMUJail() : nil))
            }

            deinit { _ = try? runShell("rm -rf \(root)") }

            /// The snapshots' memory files, one per snapshot made.
            var memoryFiles: [String] {
                (try? runShell("ls \(root)/*/memory 2>/dev/null"))?.split(separator: "\n").map(String.init) ?? []
            }

            func run(_ command: String) async throws -> (hello: AgentHello, result: RunResult) {
                try await driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    (session.hello, try await session.run(VMTest.request(command), timeout: .seconds(20)))
                }
            }

            /// This process's sealed memfd of the snapshot whose memory file is `memory` (a duplicate: close it).
            func sealedMemory(of memory: String) throws -> CInt {
                let identity = try #require(readSmallFile(String(memory.dropLast("memory".count)) + "memory.id"))
                return try #require(TemplateMemoryCache.shared.descriptor(for: identity), "this process holds the snapshot's memfd")
            }
        }

        /// Size, mtime, inode, owner and mode of a file, and a digest of its contents.
        static func fingerprint(_ path: String) throws -> String {
            try runShell("stat -L -c '%s %Y.%y %i %u %a' \(path) && sha256sum < \(path)")
        }

        /// Size, allocated blocks, inode and digest of a descriptor's file.
        static func fingerprint(descriptor fd: CInt) throws -> String {
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw POSIXFailure("fstat") }
            return "\(info.st_size) \(info.st_blocks) \(info.st_ino) " + (try runShell("sha256sum < /proc/\(getpid())/fd/\(fd)"))
        }

        @Test(arguments: Jail.allCases)
        func twoClonesWritingTheSamePageEachReadBackTheirOwn(_ jail: Jail) async throws {
            let store = Store(jail)
            let first = try await store.run("true")
            #expect(first.hello.resumeNonce != nil, "the first VM was restored from the snapshot it made")
            let memory = try #require(store.memoryFiles.first, "a copy-on-write snapshot keeps the template's memory in a file")
            let directory = String(memory.dropLast("/memory".count))
            let stateBytes = Int(try runShell("stat -c %s \(directory)/state").filter(\.isNumber)) ?? .max
            #expect(stateBytes < 1 << 20, "the state holds no guest RAM: \(stateBytes) bytes")
            #expect(try runShell("stat -c %u:%a \(memory)") == "0:444", "the template's memory file is read-only and the worker's")
            let before = try Self.fingerprint(memory)
            let sealed = try store.sealedMemory(of: memory)
            defer { close(sealed) }
            let sealedBefore = try Self.fingerprint(descriptor: sealed)

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
            #expect(try Self.fingerprint(memory) == before, "the snapshot's memory file never changes under its VMs")
            #expect(try Self.fingerprint(descriptor: sealed) == sealedBefore, "the sealed memfd never changes under its VMs")
            #expect(store.memoryFiles == [memory], "the snapshot was reused")
        }

        /// The kernel, not our care, keeps the template immutable: even the worker (root) cannot
        /// write, resize or punch a hole in its sealed memfd, nor map it shared and writable.
        @Test func theSealedMemoryRefusesEveryChangeEvenFromRoot() async throws {
            let store = Store(.unjailed)
            _ = try await store.run("true")
            let memory = try #require(store.memoryFiles.first)
            let sealed = try store.sealedMemory(of: memory)
            defer { close(sealed) }
            let before = try Self.fingerprint(descriptor: sealed)
            #expect(geteuid() == 0)

            errno = 0
            #expect(pwrite(sealed, "x", 1, 4096) == -1 && errno == EPERM, "write: errno \(errno)")
            errno = 0
            #expect(ftruncate(sealed, 4096) == -1 && errno == EPERM, "ftruncate: errno \(errno)")
            errno = 0
            #expect(ftruncate(sealed, 1 << 30) == -1 && errno == EPERM, "ftruncate (grow): errno \(errno)")
            errno = 0
            #expect(Self.punchHole(sealed, offset: 0, length: 1 << 20) == -1 && errno == EPERM, "fallocate(PUNCH_HOLE): errno \(errno)")
            errno = 0
            let shared = mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, sealed, 0)
            #expect(shared == MAP_FAILED && errno == EPERM, "a shared writable mapping: errno \(errno)")
            // Reopened read-write, as QEMU does through /proc/self/fd: the seals hold on every open file.
            let reopened = open("/proc/self/fd/\(sealed)", O_RDWR | O_CLOEXEC)
            #expect(reopened >= 0)
            defer { close(reopened) }
            errno = 0
            #expect(pwrite(reopened, "x", 1, 0) == -1 && errno == EPERM, "write through a reopened descriptor: errno \(errno)")
            #expect(fcntl(sealed, SealedMemory.getSeals) & SealedMemory.seals == SealedMemory.seals)
            #expect(try Self.fingerprint(descriptor: sealed) == before)
        }

        /// `fallocate` is behind _GNU_SOURCE, which Swift's Glibc module does not define.
        static func punchHole(_ fd: CInt, offset: Int, length: Int) -> CInt {
            typealias Fallocate = @convention(c) (CInt, CInt, off_t, off_t) -> CInt
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return -2 }
            let punchHoleKeepSize: CInt = 0x02 | 0x01  // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            return unsafeBitCast(symbol, to: Fallocate.self)(fd, punchHoleKeepSize, off_t(offset), off_t(length))
        }

        /// A clone that writes most of its guest memory stays inside its cgroup's memory limit. Were
        /// the memfd sparse, its first touch of a hole would allocate a page of the memfd, charged to
        /// its cgroup on top of its private copy, and its QEMU would be OOM-killed (it was).
        @Test func aCloneWritingMostOfItsMemoryStaysInsideItsCgroup() async throws {
            let store = Store(.jailed)
            _ = try await store.run("true")
            let hog = "python3 -c 'b = bytearray(190 << 20); b[::4096] = b\"x\" * len(b[::4096]); print(len(b))'"
            for _ in 0..<2 {
                let (hello, result) = try await store.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    (session.hello, try await session.run(VMTest.request(hog, memory: 240 << 20), timeout: .seconds(60)))
                }
                #expect(hello.resumeNonce != nil)
                #expect(result.verdict == .ok && result.stdoutText == "\(190 << 20)\n", "\(result.summary)")
            }
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

        /// This process already holds a valid memfd of the snapshot, and still never maps it once
        /// the file on disk changed: the file is the snapshot, the memfd only its copy.
        @Test(arguments: Jail.allCases, Change.allCases)
        func aMemoryFileChangedOnDiskIsNeverMappedAndTheJobStillRuns(_ jail: Jail, _ change: Change) async throws {
            let store = Store(jail)
            _ = try await store.run("true")
            let memory = try #require(store.memoryFiles.first)
            let identity = try #require(readSmallFile(store.root + "/" + memory.split(separator: "/").dropLast().last! + "/memory.id"))
            #expect(TemplateMemoryCache.shared.identities.contains(identity))
            _ = try runShell(change.command(memory))

            let fallback = try await store.run("echo ran")
            #expect(fallback.result.stdoutText == "ran\n", "\(fallback.result.summary)")
            #expect(fallback.hello.resumeNonce == nil, "the job ran in a cold-booted VM, not one mapping the changed file")
            #expect(store.memoryFiles.isEmpty, "the snapshot with the changed file was removed")
            #expect(!TemplateMemoryCache.shared.identities.contains(identity), "its memfd was dropped")

            let next = try await store.run("echo warm")
            #expect(next.result.stdoutText == "warm\n", "\(next.result.summary)")
            #expect(next.hello.resumeNonce != nil, "a new snapshot was made and restored")
            #expect(store.memoryFiles.count == 1)
        }

        /// A process that did not make the snapshot (a restarted worker) copies the checked file into
        /// a sealed, fully allocated memfd once, and restores from it.
        @Test(arguments: Jail.allCases)
        func aProcessWithoutTheMemfdLoadsItOnceFromTheFile(_ jail: Jail) async throws {
            let store = Store(jail)
            _ = try await store.run("true")
            let memory = try #require(store.memoryFiles.first)
            let identity = try #require(readSmallFile(String(memory.dropLast("memory".count)) + "memory.id"))
            let fileDigest = try runShell("sha256sum < \(memory)")
            TemplateMemoryCache.shared.remove(identity)
            #expect(TemplateMemoryCache.shared.descriptor(for: identity) == nil)

            // The copy itself: the file's bytes, sealed, every page allocated by the worker (none left
            // for a VM's first touch to allocate and be charged for).
            let file = open(memory, O_RDONLY | O_CLOEXEC)
            #expect(file >= 0)
            let copy = try SealedMemory.copy(of: file, size: 256 << 20, name: "test")
            close(file)
            try SealedMemory.checkSealed(copy)
            #expect(try runShell("sha256sum < /proc/\(getpid())/fd/\(copy)") == fileDigest)
            let allocated = SealedMemory.allocatedBytes(copy)
            close(copy)
            #expect(allocated == 256 << 20, "the memfd is fully allocated: \(allocated) bytes")

            for index in 0..<2 {
                let restored = try await store.run("echo \(index)")
                #expect(restored.result.stdoutText == "\(index)\n", "\(restored.result.summary)")
                #expect(restored.hello.resumeNonce != nil, "restored from the memfd loaded from the file")
            }
            let loaded = try store.sealedMemory(of: memory)
            defer { close(loaded) }
            try SealedMemory.checkSealed(loaded)
            #expect(try runShell("sha256sum < /proc/\(getpid())/fd/\(loaded)") == fileDigest, "the memfd holds the file's bytes")
        }

        @Test(arguments: Jail.allCases)
        func nothingIsLeftBehind(_ jail: Jail) async throws {
            var store: Store? = Store(jail)
            let before = VMTest.census()
            _ = try await store!.run("true")
            _ = try await store!.run("true")
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries == before.runtimeEntries, "\(after)")
            let root = store!.root
            let partial = (try? runShell("ls -a \(root) | grep -c partial")) ?? ""
            #expect(partial.filter(\.isNumber) == "0", "no partial directory is left")
            let held = (try? runShell("ls -l /proc/\(getpid())/fd | grep -c \(root)")) ?? ""
            #expect(held.filter(\.isNumber) == "0", "no descriptor of the snapshot's files stays open")
            // The snapshot's memfd stays (the cache's one descriptor) until its snapshot is gone.
            let memory = try #require(store!.memoryFiles.first)
            let sealed = try store!.sealedMemory(of: memory)
            var info = stat()
            fstat(sealed, &info)
            close(sealed)
            #expect(Self.openDescriptors(ofInode: info.st_ino) == 1, "one descriptor of the memfd: the cache's")
            store = nil  // removes the snapshot directory
            _ = TemplateMemoryCache.shared.descriptor(for: "")  // any lookup drops memfds of removed snapshots
            #expect(Self.openDescriptors(ofInode: info.st_ino) == 0, "the memfd of a removed snapshot is closed")
        }

        /// This process's descriptors of memfds with inode `inode`.
        static func openDescriptors(ofInode inode: ino_t) -> Int {
            RuntimeDirectory.entries(of: "/proc/self/fd").filter { name in
                var info = stat()
                guard let fd = CInt(name), fstat(fd, &info) == 0, info.st_ino == inode else { return false }
                var buffer = [CChar](repeating: 0, count: 256)
                let length = readlink("/proc/self/fd/\(name)", &buffer, buffer.count - 1)
                return length > 0 && String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("/memfd:")
            }.count
        }
    }
}

struct POSIXFailure: Error {
    var call: String
    init(_ call: String) { self.call = call }
}

extension Array {
    /// The first two elements, for a destructuring `let`.
    fileprivate var pair: (Element, Element) { (self[0], self[1]) }
}
