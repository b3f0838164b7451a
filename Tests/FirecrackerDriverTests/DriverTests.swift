import TestSupport
import AgentProtocol
import FirecrackerDriver
import Foundation
import MicroVM
import Testing

/// The driver end to end against a stand-in `firecracker` process and the in-process protocol peer.
@Suite struct DriverTests {
    private func vmConfiguration(_ directory: TemporaryDirectory, bootTimeout: Duration = .seconds(30)) throws -> VMConfiguration {
        VMConfiguration(
            image: try Fixtures.image(in: directory), vcpus: 1, memoryMiB: 128, bootTimeout: bootTimeout,
            runtimeDirectory: directory.file("run"))
    }

    private func runtimeEntries(_ directory: TemporaryDirectory) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.file("run"))) ?? []
    }

    @Test func bootsThroughInstanceStartRunsAJobOverVsockAndTearsDown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)))
            let (hello, result, pid) = try await driver.withVM(try vmConfiguration(directory), logger: Fixtures.logger) { session in
                let pid = try #require(Fixtures.pidFile(in: directory))
                #expect(Fixtures.processExists(pid))
                // Recorded for MicroVM's leftover sweep: this process owns the VM, the VMM is `pid`.
                let vmDirectory = try #require(runtimeEntries(directory).first { $0.hasPrefix("fc-") })
                let vmm = try String(contentsOfFile: directory.file("run/\(vmDirectory)/vmm"), encoding: .utf8)
                #expect(vmm.hasPrefix("\(pid) "))
                let owner = try String(contentsOfFile: directory.file("run/\(vmDirectory)/owner"), encoding: .utf8)
                #expect(owner.hasPrefix("\(getpid()) "))
                let result = try await session.run(RunRequest(id: "job-7", workload: .shell(command: "echo hi")), timeout: .seconds(5))
                return (session.hello, result, pid)
            }
            #expect(hello.agentVersion == "fake-agent")
            #expect(result.id == "job-7")
            #expect(String(decoding: result.stdout, as: UTF8.self) == "fake guest ran: echo hi\n")
            #expect(peer.runs.map(\.id) == ["job-7"])

            // The documented order, each device before InstanceStart, the rootfs read-only and shared in place.
            #expect(peer.requests.map { "\($0.method) \($0.uri)" } == [
                "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs",
                "PUT /entropy", "PUT /vsock", "PUT /actions",
            ])
            let drive = try #require(peer.requests.first { $0.uri == "/drives/rootfs" }?.object)
            #expect(drive["is_read_only"] as? Bool == true)
            #expect(drive["is_root_device"] as? Bool == true)
            #expect(drive["path_on_host"] as? String == directory.file("rootfs.ext4"))
            let boot = try #require(peer.requests.first { $0.uri == "/boot-source" }?.object)
            #expect(boot["kernel_image_path"] as? String == directory.file("vmlinux"))
            #expect((boot["boot_args"] as? String)?.contains("init=/sbin/codebench-init") == true)
            #expect((boot["boot_args"] as? String)?.hasPrefix("console=ttyS0 ") == true)
            let vsock = try #require(peer.requests.first { $0.uri == "/vsock" }?.object)
            #expect(vsock["guest_cid"] as? Int == 3)
            #expect((vsock["uds_path"] as? String)?.hasSuffix("/v.sock") == true)
            #expect(peer.vsockConnects.last == "CONNECT 1024")
            #expect(!peer.requests.contains { $0.uri.hasPrefix("/network-interfaces") })

            let arguments = try String(contentsOfFile: directory.file("args"), encoding: .utf8)
            #expect(arguments.hasPrefix("--api-sock \(directory.file("run"))/fc-"))
            #expect(arguments.contains("/fc.sock --id cb-"))
            #expect(!arguments.contains("--no-seccomp") && !arguments.contains("--seccomp-filter"))

            // Teardown: the VMM is killed and reaped, its runtime directory is gone.
            #expect(!Fixtures.processExists(pid))
            #expect(runtimeEntries(directory).isEmpty)
        }
    }

    @Test func aFaultMessageReachesTheVMErrorAndTeardownStillHappens() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fault = "Invalid kernel file: No such file or directory (os error 2)"
        try await FakeFirecracker.with(
            apiSocketPath: directory.file("peer.sock"), responder: { $0.uri == "/boot-source" ? .fault(status: 400, fault) : nil }
        ) { peer in
            let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)))
            let error = await #expect(throws: VMError.self) {
                try await driver.withVM(try vmConfiguration(directory), logger: Fixtures.logger) { _ in () }
            }
            #expect(error?.code == .vmmAPI)
            #expect(error?.message.contains(fault) == true)
            #expect(error?.message.contains("put-boot-source") == true)
            #expect(error?.consoleTail?.contains("fake firecracker up") == true)
            // Firecracker's own log (drained from the logger FIFO) comes with the error.
            #expect(error?.consoleTail?.contains("firecracker log:") == true)
            #expect(error?.consoleTail?.contains("Running Firecracker v1.16.1") == true)
            #expect(error?.consoleTail?.contains("Message: \(fault)") == true)
            #expect(!peer.requests.contains { $0.uri == "/actions" })
            let pid = try #require(Fixtures.pidFile(in: directory))
            #expect(!Fixtures.processExists(pid))
            #expect(runtimeEntries(directory).isEmpty)
        }
    }

    @Test func aVMMThatDiesAtOnceFailsTheBootWithItsOwnWords() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let message = "Error: RunWithApi(BuildMicroVMFromRequests(Kvm(OpenKvm(Os { code: 2 }))))"
        let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.failingBinary(in: directory, message: message)))
        let error = await #expect(throws: VMError.self) {
            try await driver.withVM(try vmConfiguration(directory), logger: Fixtures.logger) { _ in () }
        }
        #expect(error?.code == .bootFailed)
        #expect(error?.message.contains("firecracker ended with exit status 1") == true)
        #expect(error?.consoleTail?.contains(message) == true)
        #expect(runtimeEntries(directory).isEmpty)
    }

    @Test func cancellationTearsTheVMDown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)))
            let vm = try vmConfiguration(directory)
            let booted = AsyncStream<Void>.makeStream()
            let task = Task {
                try await driver.withVM(vm, logger: Fixtures.logger) { _ in
                    booted.continuation.yield()
                    try await Task.sleep(for: .seconds(600))
                }
            }
            var iterator = booted.stream.makeAsyncIterator()
            await iterator.next()
            let pid = try #require(Fixtures.pidFile(in: directory))
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(!Fixtures.processExists(pid))
            #expect(runtimeEntries(directory).isEmpty)
        }
    }

    @Test func refusesWhatItCannotRunWithClearErrors() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = FirecrackerDriver(configuration: .init(firecrackerPath: "/nonexistent/firecracker"))
        let noBinary = await #expect(throws: VMError.self) {
            try await missing.withVM(try vmConfiguration(directory), logger: Fixtures.logger) { _ in () }
        }
        #expect(noBinary?.code == .vmmUnavailable)
        #expect(noBinary?.message.contains("/nonexistent/firecracker") == true)

        let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.failingBinary(in: directory, message: "unused")))
        var noImage = try vmConfiguration(directory)
        noImage.image = GuestImage(kernelPath: directory.file("absent-vmlinux"), rootfsPath: directory.file("rootfs.ext4"))
        let imageError = await #expect(throws: VMError.self) { try await driver.withVM(noImage, logger: Fixtures.logger) { _ in () } }
        #expect(imageError?.code == .imageMissing)

        var network = try vmConfiguration(directory)
        network.network = true
        let networkError = await #expect(throws: VMError.self) { try await driver.withVM(network, logger: Fixtures.logger) { _ in () } }
        #expect(networkError?.code == .invalidConfiguration)

        var longPath = try vmConfiguration(directory)
        longPath.runtimeDirectory = directory.path + "/" + String(repeating: "d", count: 100)
        let pathError = await #expect(throws: VMError.self) { try await driver.withVM(longPath, logger: Fixtures.logger) { _ in () } }
        #expect(pathError?.code == .invalidConfiguration)
        #expect(pathError?.message.contains("Unix sockets allow 107") == true)
    }

    @Test func productionBootArgumentsDisableTheSerialConsole() {
        let production = FirecrackerDriver.Configuration(serialConsole: false)
        #expect(production.effectiveBootArguments.hasPrefix("8250.nr_uarts=0 "))
        #expect(!production.effectiveBootArguments.contains("console=ttyS0"))
        #expect(FirecrackerDriver.Configuration().effectiveBootArguments
            == "console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda ro init=/sbin/codebench-init random.trust_cpu=on quiet")
    }
}
