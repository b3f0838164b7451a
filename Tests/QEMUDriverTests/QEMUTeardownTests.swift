import AgentProtocol
import MicroVM
import QEMUDriver
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// Teardown and refusals: every path leaves no QEMU process, socket or file behind.
    @Suite struct Teardown {
        @Test func twentyVMsInARowLeaveNothingBehind() async throws {
            let configuration = try VMTest.configuration(memoryMiB: 128)
            let before = VMTest.census()
            for index in 0..<20 {
                let result = try await VMTest.withVM(configuration) { session in
                    try await session.run(VMTest.request("echo \(index)"), timeout: .seconds(20))
                }
                #expect(result.stdoutText == "\(index)\n", "\(result.summary)")
            }
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries == before.runtimeEntries, "\(after)")
        }

        /// Cancelled as soon as QEMU runs (connect step), and later, while waiting for the hello or, on a
        /// fast boot, in the body: the body waits for cancellation, so no boot speed makes the task succeed.
        @Test(arguments: [Duration.zero, .milliseconds(700)])
        func cancellingDuringBootTearsTheVMDown(after delay: Duration) async throws {
            let configuration = try VMTest.configuration()
            let clock = ContinuousClock()
            let task = Task {
                try await VMTest.driver.withVM(configuration, logger: VMTest.logger) { _ in try await Task.sleep(for: .seconds(600)) }
            }
            let deadline = clock.now + .seconds(5)
            while VMTest.census().vmmChildren.isEmpty, clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(!VMTest.census().vmmChildren.isEmpty, "QEMU never started")
            try await Task.sleep(for: delay)
            let cancelledAt = clock.now
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            #expect(clock.now - cancelledAt < .seconds(3))
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries.isEmpty, "\(after)")
        }

        @Test func bodyErrorsStillTearDown() async throws {
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { _ in throw Boom() }
            }
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries.isEmpty, "\(after)")
        }

        @Test func qemuDyingMidRunIsReportedAsACrashWithTheConsole() async throws {
            let error = await #expect(throws: VMError.self) {
                try await VMTest.driver.withVM(try VMTest.configuration(), logger: VMTest.logger) { session in
                    let run = Task { try await session.run(VMTest.request("sleep 30"), timeout: .seconds(60)) }
                    try await Task.sleep(for: .milliseconds(300))
                    for pid in VMTest.census().vmmChildren { kill(pid, SIGKILL) }
                    return try await run.value
                }
            }
            #expect(error?.code == .vmCrashed, "\(String(describing: error))")
            #expect(error?.consoleTail?.contains("codebench") == true, "\(String(describing: error?.consoleTail))")
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries.isEmpty, "\(after)")
        }

        @Test func missingImageIsImageMissing() async throws {
            let vm = VMConfiguration(image: GuestImage.at("/nonexistent/codebench-image"), runtimeDirectory: VMTest.runtimeRoot)
            let error = await #expect(throws: VMError.self) {
                try await VMTest.driver.withVM(vm, logger: VMTest.logger) { _ in () }
            }
            #expect(error?.code == .imageMissing)
            #expect(error?.message.contains("scripts/build-guest-image") == true)
        }

        @Test func networkWithoutTheEgressProxyIsRefusedBeforeQEMUStarts() async throws {
            var vm = try VMTest.configuration()
            vm.network = true
            // Never a VM with an unfiltered way out: no proxy, no network VM.
            let driver = QEMUDriver(configuration: .init(accelerator: .tcg, egressProxyPath: "/nonexistent/codebench-egress"))
            let error = await #expect(throws: VMError.self) {
                try await driver.withVM(vm, logger: VMTest.logger) { _ in () }
            }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message == "a VM with network needs the egress proxy, and /nonexistent/codebench-egress is not an executable file")
            #expect(VMTest.census().vmmChildren.isEmpty)
        }

        @Test func qemuRefusingTheKernelIsABootFailureWithItsMessage() async throws {
            // A file that is not a kernel: QEMU exits at once, and says why on stderr.
            let vm = VMConfiguration(
                image: GuestImage(kernelPath: "/etc/hostname", rootfsPath: "/etc/hostname"), runtimeDirectory: VMTest.runtimeRoot)
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: VMError.self) {
                try await VMTest.driver.withVM(vm, logger: VMTest.logger) { _ in () }
            }
            #expect(error?.code == .bootFailed, "\(String(describing: error))")
            #expect(error?.message.contains("QEMU said") == true, "\(String(describing: error))")
            #expect(clock.now - start < .seconds(10))
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "\(after)")
            #expect(after.runtimeEntries.isEmpty, "\(after)")
        }

        @Test func tcgProbeBootsTheImageAndKVMProbeGivesAReason() async throws {
            let image = try GuestImageFixture.require()
            let tcg = await QEMUDriver.probe(accelerator: .tcg, image: image, logger: VMTest.logger)
            #expect(tcg.usable, "\(tcg)")
            let kvm = await QEMUDriver.probe(accelerator: .kvm, image: image, logger: VMTest.logger)
            // Either outcome is legitimate on some host; an unusable KVM must say why.
            #expect(kvm.usable || kvm.reason.count > 20, "\(kvm)")
            #expect(VMTest.census().vmmChildren.isEmpty)
        }
    }
}
