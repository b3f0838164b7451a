import TestSupport
import AgentProtocol
@testable import FirecrackerDriver
import Foundation
import MicroVM
import Testing

@Suite struct JailerTests {
    /// The arguments `docs/jailer.md` (v1.16.1) documents; anything else would make the jailer exit.
    static let documentedFlags: Set<String> = [
        "--id", "--exec-file", "--uid", "--gid", "--parent-cgroup", "--cgroup-version", "--cgroup",
        "--chroot-base-dir", "--netns", "--resource-limit", "--daemonize", "--new-pid-ns",
    ]

    @Test func buildsTheDocumentedCommandLine() {
        var configuration = JailerConfiguration(
            jailerPath: "/usr/local/bin/jailer", chrootBaseDirectory: "/srv/jailer", gid: 64_000, networkNamespace: "cb0")
        configuration.memoryOverheadMiB = 64
        let command = JailerCommand(
            id: "cb-1a2b", uid: 64_005, firecrackerPath: "/usr/local/bin/firecracker", configuration: configuration,
            vcpus: 2, memoryMiB: 256, apiSocketInJail: "/run/firecracker.socket")
        #expect(command.executable == "/usr/local/bin/jailer")
        #expect(command.arguments == [
            "--id", "cb-1a2b",
            "--exec-file", "/usr/local/bin/firecracker",
            "--uid", "64005",
            "--gid", "64000",
            "--chroot-base-dir", "/srv/jailer",
            "--cgroup-version", "2",
            "--cgroup", "memory.max=\(320 << 20)",
            "--cgroup", "cpu.max=200000 100000",
            "--resource-limit", "fsize=\(16 << 20)",
            "--resource-limit", "no-file=1024",
            "--netns", "/var/run/netns/cb0",
            "--new-pid-ns",
            "--", "--api-sock", "/run/firecracker.socket",
        ])
        let jailerPart = command.arguments.prefix { $0 != "--" }
        for flag in jailerPart where flag.hasPrefix("--") {
            #expect(Self.documentedFlags.contains(flag), "\(flag) is not a documented jailer argument")
        }
        // setsid() fails for a process-group leader, which is how the driver spawns the jailer.
        #expect(!command.arguments.contains("--daemonize"))
        // The documented formats: <cgroup_file>=<value>, <resource>=<value>.
        for (index, flag) in command.arguments.enumerated() where flag == "--cgroup" || flag == "--resource-limit" {
            #expect(command.arguments[index + 1].split(separator: "=").count == 2)
        }
    }

    @Test func theJailLayoutFollowsTheJailer() {
        let layout = FirecrackerLayout.jailed(chrootBaseDirectory: "/srv/jailer/", execFileName: "firecracker", vmID: "cb-42")
        #expect(layout.ownedDirectory == "/srv/jailer/firecracker/cb-42")
        #expect(layout.chrootDirectory == "/srv/jailer/firecracker/cb-42/root")
        #expect(layout.apiSocket == "/srv/jailer/firecracker/cb-42/root/run/firecracker.socket")
        #expect(layout.inVMM(layout.apiSocket) == "/run/firecracker.socket")
        #expect(layout.inVMM(layout.vsockSocket) == "/v.sock")
        #expect(layout.inVMM(layout.kernel) == "/vmlinux")
        #expect(layout.inVMM(layout.rootfs) == "/rootfs.ext4")
        #expect(throws: Never.self) { try layout.validateSocketPaths() }

        let deep = FirecrackerLayout.jailed(
            chrootBaseDirectory: "/var/lib/codebench/" + String(repeating: "x", count: 60), execFileName: "firecracker", vmID: "cb-42")
        let error = #expect(throws: VMError.self) { try deep.validateSocketPaths() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("short") == true)
    }

    @Test func preparesAndRemovesAJailWithHardLinksAndPerVMOwnership() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try Fixtures.image(in: directory)
        let layout = FirecrackerLayout.jailed(chrootBaseDirectory: directory.file("jail"), execFileName: "firecracker", vmID: "cb-7")
        try JailPreparation.prepareJail(layout, image: image, uid: 64_123, gid: 64_000, logger: Fixtures.logger)

        // Same inode: linked, not copied (the image is shared read-only by every VM).
        #expect(try inode(layout.kernel) == inode(image.kernelPath))
        #expect(try inode(layout.rootfs) == inode(image.rootfsPath))
        let run = try FileManager.default.attributesOfItem(atPath: layout.chrootDirectory! + "/run")
        #expect((run[.ownerAccountID] as? NSNumber)?.uint32Value == 64_123)
        for fifo in [layout.logFIFO, layout.metricsFIFO] {
            let attributes = try FileManager.default.attributesOfItem(atPath: fifo)
            #expect(isFIFO(fifo))
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == 64_123)
        }
        // A second VM with the same id must not reuse a stale jail.
        #expect(throws: VMError.self) {
            try JailPreparation.prepareJail(layout, image: image, uid: 64_124, gid: 64_000, logger: Fixtures.logger)
        }

        JailPreparation.remove(layout, logger: Fixtures.logger)
        #expect(!FileManager.default.fileExists(atPath: layout.ownedDirectory))
        #expect(FileManager.default.fileExists(atPath: image.rootfsPath))
    }

    @Test func copiesAnImageTheJailedUIDCouldNotReadThroughAHardLink() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let image = try Fixtures.image(in: directory)
        chmod(image.kernelPath, 0o400)
        let layout = FirecrackerLayout.jailed(chrootBaseDirectory: directory.file("jail"), execFileName: "firecracker", vmID: "cb-8")
        try JailPreparation.prepareJail(layout, image: image, uid: 64_200, gid: 64_000, logger: Fixtures.logger)
        defer { JailPreparation.remove(layout, logger: Fixtures.logger) }
        #expect(try inode(layout.kernel) != inode(image.kernelPath))
        let attributes = try FileManager.default.attributesOfItem(atPath: layout.kernel)
        #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == 64_200)
        #expect(try String(contentsOfFile: layout.kernel, encoding: .utf8) == "not a kernel\n")
    }

    @Test func eachVMGetsItsOwnUID() {
        let pool = UIDPool(range: 64_000...64_002)
        let uids = (0..<3).compactMap { _ in pool.acquire() }
        #expect(Set(uids).count == 3)
        #expect(pool.acquire() == nil)
        pool.release(uids[1])
        #expect(pool.acquire() == uids[1])
    }

    /// The whole jailed boot against a stand-in jailer that does what `docs/jailer.md` describes
    /// that matters to the driver: checks its arguments, forks Firecracker (as `--new-pid-ns` does),
    /// writes `<chroot>/firecracker.pid` and exits; the API socket is at the documented in-jail path.
    @Test func bootsJailedWithTheInJailPaths() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let chrootBase = directory.file("jail")
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock"), hostPath: Fixtures.jailedHostPath(in: directory)) { peer in
            let firecracker = try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)
            try Fixtures.standInJailer(in: directory, firecracker: firecracker)
            var jailer = JailerConfiguration(jailerPath: directory.file("bin/jailer"), chrootBaseDirectory: chrootBase)
            jailer.newPIDNamespace = true
            let driver = FirecrackerDriver(configuration: .init(firecrackerPath: firecracker, jailer: jailer))
            var vm = VMConfiguration(image: try Fixtures.image(in: directory), memoryMiB: 128, bootTimeout: .seconds(30))
            vm.runtimeDirectory = directory.file("unused")
            let result = try await driver.withVM(vm, logger: Fixtures.logger) { session in
                // Recorded outside the chroot for a leftover sweep: owner = us, vmm = the forked "firecracker".
                let jail = try #require(try FileManager.default.contentsOfDirectory(atPath: chrootBase + "/firecracker").first)
                let owner = try String(contentsOfFile: "\(chrootBase)/firecracker/\(jail)/owner", encoding: .utf8)
                #expect(owner.hasPrefix("\(getpid()) "))
                let vmm = try String(contentsOfFile: "\(chrootBase)/firecracker/\(jail)/vmm", encoding: .utf8)
                #expect(vmm.hasPrefix("\(try #require(Fixtures.pidFile(in: directory))) "))
                return try await session.run(RunRequest(id: "jailed", workload: .shell(command: "id -u")), timeout: .seconds(5))
            }
            #expect(result.id == "jailed")
            let bodies = Dictionary(uniqueKeysWithValues: peer.requests.map { ($0.uri, $0.object ?? [:]) })
            #expect(bodies["/boot-source"]?["kernel_image_path"] as? String == "/vmlinux")
            #expect(bodies["/drives/rootfs"]?["path_on_host"] as? String == "/rootfs.ext4")
            #expect(bodies["/logger"]?["log_path"] as? String == "/log.fifo")
            #expect(bodies["/metrics"]?["metrics_path"] as? String == "/metrics.fifo")
            #expect(bodies["/vsock"]?["uds_path"] as? String == "/v.sock")
            let arguments = try String(contentsOfFile: directory.file("jailer-args"), encoding: .utf8)
            #expect(arguments.contains("--uid 64000 --gid 64000"))
            #expect(arguments.contains("--new-pid-ns -- --api-sock /run/firecracker.socket"))
            // The forked "firecracker" was killed and the jail removed.
            let pid = try #require(Fixtures.pidFile(in: directory))
            #expect(!Fixtures.processExists(pid))
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: chrootBase + "/firecracker")) ?? []).isEmpty)
        }
    }

    private func inode(_ path: String) throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SpecError("stat \(path): \(errno)") }
        return UInt64(info.st_ino)
    }

    private func isFIFO(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO
    }
}
