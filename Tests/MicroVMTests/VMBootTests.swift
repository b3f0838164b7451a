import AgentProtocol
import Foundation
import Logging
import MicroVM
import Synchronization
import TestSupport
import Testing

/// MicroVM's boot skeleton against a VMM whose VMs are plain objects: when it restores, when it boots
/// cold, when it discards a snapshot, and that every VM it makes is torn down once. The real drivers
/// are covered by QEMUSnapshotTests (real VMs) and FirecrackerDriverTests.SnapshotTests (a fake peer).
@Suite struct VMBootTests {
    /// What happened, in order: `make <purpose>`, `<purpose> <step>`, `warm-up`, `save`, `failure <step>`, `teardown <purpose>`.
    final class Journal: Sendable {
        private let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
        func clear() { events.withLock { $0.removeAll() } }
    }

    final class FakeVM: BootingVM {
        let logger = Logger(label: "test.vmboot")
        let purpose: String
        init(purpose: String) { self.purpose = purpose }
    }

    struct FakeSession: GuestSession {
        let hello = AgentHello(agentVersion: "fake", kernel: "fake")
        let bootDuration = Duration.milliseconds(1)
        let isAlive = true
        let journal: Journal

        func run(_ request: RunRequest, timeout: Duration) async throws -> RunResult {
            journal.add("run \(request.id)")
            return RunResult(
                id: request.id, verdict: .ok, exitCode: 0, signal: nil, stdout: Data(), stderr: Data(), stdoutTruncated: false,
                stderrTruncated: false, wallTimeMilliseconds: 1, cpuTimeMilliseconds: 1, peakMemoryBytes: 0)
        }
    }

    struct StepFailed: Error {}

    struct FakeVMM: BootableVMM {
        var snapshotRoot: String?
        let kernel: String
        let journal: Journal
        /// `<purpose> <step>` that throws (`error`, or a plain failure).
        var failing: String?
        var error: any Error = StepFailed()
        var refused = false
        var saveFails = false

        func snapshotDirectory(for vm: VMConfiguration) -> String? { snapshotRoot }
        var snapshotWarmup: String? { "true" }
        var snapshotSaveTimeout: Duration { .seconds(5) }

        static func name(_ purpose: BootPurpose) -> String {
            switch purpose {
            case .cold: return "cold"
            case .template: return "template"
            case .restore: return "restore"
            }
        }

        func makeVM(_ vm: VMConfiguration, purpose: BootPurpose, logger: Logger) -> FakeVM {
            journal.add("make \(Self.name(purpose))")
            return FakeVM(purpose: Self.name(purpose))
        }

        func steps(for purpose: BootPurpose) -> [BootStep<FakeVM>] {
            let last = if case .restore = purpose { "resume" } else { "hello" }
            return ["spawn", last].map { name in
                BootStep(name) { [journal, failing, error] vm in
                    journal.add("\(vm.purpose) \(name)")
                    if failing == "\(vm.purpose) \(name)" { throw error }
                }
            }
        }

        func session(of vm: FakeVM) throws -> FakeSession { FakeSession(journal: journal) }

        func failure(_ error: any Error, step: String?, of vm: FakeVM) async -> any Error {
            journal.add("failure \(step ?? "-")")
            return error
        }

        func snapshotRefused(by vm: FakeVM, failure: any Error) -> Bool { refused }

        /// Each VM's host CPU, by purpose: a job's usage must count its own VMs only, never the template.
        static let cpuTime = ["template": Duration.seconds(1), "restore": .milliseconds(30), "cold": .milliseconds(100)]

        func tearDown(_ vm: FakeVM) async -> Duration? {
            journal.add("teardown \(vm.purpose)")
            return Self.cpuTime[vm.purpose]
        }

        func snapshotKey(for vm: VMConfiguration) throws -> SnapshotKey {
            SnapshotKey(format: "vmboot-test 1", files: [("kernel", kernel)], machine: ["fake"])
        }

        func saveSnapshot(of template: FakeVM, into partial: String) async throws {
            journal.add("save")
            if saveFails { throw StepFailed() }
            try Data("state".utf8).write(to: URL(fileURLWithPath: partial + "/state"))
        }
    }

    private func setUp(_ directory: TemporaryDirectory) throws -> (FakeVMM, VMConfiguration) {
        try directory.write("vmlinux", "kernel")
        let vmm = FakeVMM(snapshotRoot: directory.file("snapshots"), kernel: directory.file("vmlinux"), journal: Journal())
        return (vmm, VMConfiguration(image: GuestImage(kernelPath: directory.file("vmlinux"), rootfsPath: directory.file("rootfs"))))
    }

    /// Runs one job; returns what its VMs cost as VMBoot reported it.
    @discardableResult
    private func job(_ vmm: FakeVMM, _ vm: VMConfiguration) async throws -> VMUsage {
        let usage = VMUsageRecorder()
        try await VMBoot(vmm).withVM(vm, logger: Logger(label: "test.vmboot"), usage: usage.record) { session in
            _ = try await session.run(RunRequest(id: "job", workload: .shell(command: "true")), timeout: .seconds(1))
        }
        return usage.usage
    }

    private func assertEveryVMTornDownOnce(_ journal: Journal) {
        let made = journal.all.filter { $0.hasPrefix("make ") }.map { $0.dropFirst(5) }
        let tornDown = journal.all.filter { $0.hasPrefix("teardown ") }.map { $0.dropFirst(9) }
        #expect(made == tornDown, "\(journal.all)")
    }

    @Test func theFirstVMMakesTheSnapshotFromAWarmedUpTemplateAndEveryVMIsRestored() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (vmm, vm) = try setUp(directory)
        let usage = try await job(vmm, vm)
        #expect(usage.vmmCPUTime == .milliseconds(30), "the restored VM's cost, not the template's")
        #expect(vmm.journal.all == [
            "make template", "template spawn", "template hello", "run snapshot-warmup", "run snapshot-shell-job", "save", "teardown template",
            "make restore", "restore spawn", "restore resume", "run job", "teardown restore",
        ])
        vmm.journal.clear()
        try await job(vmm, vm)
        #expect(vmm.journal.all == ["make restore", "restore spawn", "restore resume", "run job", "teardown restore"])
    }

    @Test func aSnapshotTheVMMRefusedIsRemovedAndTheVMBootsCold() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        try await job(vmm, vm)
        let store = try SnapshotStore(root: directory.file("snapshots"))
        let key = try vmm.snapshotKey(for: vm)
        #expect(store.lookup(key) != nil)

        vmm.journal.clear()
        vmm.failing = "restore resume"
        vmm.refused = true
        let usage = try await job(vmm, vm)
        #expect(usage.vmmCPUTime == .milliseconds(130), "the failed restore and the cold VM after it")
        #expect(vmm.journal.all == [
            "make restore", "restore spawn", "restore resume", "failure resume", "teardown restore",
            "make cold", "cold spawn", "cold hello", "run job", "teardown cold",
        ])
        #expect(store.lookup(key) == nil, "the refused snapshot is gone, so the next VM makes a new one")
        assertEveryVMTornDownOnce(vmm.journal)
    }

    @Test func aRestoreFailureThatSaysNothingAboutTheSnapshotKeepsIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        try await job(vmm, vm)
        vmm.failing = "restore spawn"
        try await job(vmm, vm)
        #expect(vmm.journal.all.contains("cold hello"))
        #expect(try SnapshotStore(root: directory.file("snapshots")).lookup(try vmm.snapshotKey(for: vm)) != nil)
        assertEveryVMTornDownOnce(vmm.journal)
    }

    @Test func aSnapshotThatCannotBeMadeCostsSpeedNotTheJob() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        vmm.saveFails = true
        try await job(vmm, vm)
        #expect(vmm.journal.all == [
            "make template", "template spawn", "template hello", "run snapshot-warmup", "run snapshot-shell-job", "save", "failure -", "teardown template",
            "make cold", "cold spawn", "cold hello", "run job", "teardown cold",
        ])
    }

    @Test func withoutASnapshotDirectoryEveryVMBootsCold() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        vmm.snapshotRoot = nil
        try await job(vmm, vm)
        #expect(vmm.journal.all == ["make cold", "cold spawn", "cold hello", "run job", "teardown cold"])
    }

    @Test func aFailedColdBootThrowsTheDriversErrorAfterTearingDown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        vmm.snapshotRoot = nil
        vmm.failing = "cold hello"
        vmm.error = VMError(.bootTimeout, "no hello")
        let error = await #expect(throws: VMError.self) { try await job(vmm, vm) }
        #expect(error?.code == .bootTimeout)
        #expect(vmm.journal.all == ["make cold", "cold spawn", "cold hello", "failure hello", "teardown cold"])
    }

    @Test func cancellationDuringARestorePassesThroughWithoutAColdBoot() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var (vmm, vm) = try setUp(directory)
        try await job(vmm, vm)
        vmm.journal.clear()
        vmm.failing = "restore resume"
        vmm.error = CancellationError()
        vmm.refused = true
        await #expect(throws: CancellationError.self) { try await job(vmm, vm) }
        #expect(!vmm.journal.all.contains("make cold"))
        #expect(try SnapshotStore(root: directory.file("snapshots")).lookup(try vmm.snapshotKey(for: vm)) != nil)
        assertEveryVMTornDownOnce(vmm.journal)
    }
}
