import TestSupport
import AgentProtocol
@testable import FirecrackerDriver
import Foundation
import MicroVM
import Testing

/// Snapshot starts against the contract-following peer: a template booted cold, warmed up, paused and
/// saved; VMs restored with `PUT /snapshot/load` and an agent resume; the cold fallback.
@Suite struct SnapshotTests {
    /// The documented template sequence: a whole cold boot, then pause and create.
    static let templateCalls = [
        "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs",
        "PUT /entropy", "PUT /vsock", "PUT /actions", "PATCH /vm", "PUT /snapshot/create",
    ]
    /// A restore configures nothing but the logger and metrics before the load (Firecracker's rule).
    static let restoreCalls = ["PUT /logger", "PUT /metrics", "PUT /snapshot/load"]

    private func setUp(_ directory: TemporaryDirectory, peer: FakeFirecracker) throws -> (FirecrackerDriver, VMConfiguration) {
        let configuration = FirecrackerDriver.Configuration(
            firecrackerPath: try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath),
            snapshotDirectory: directory.file("snapshots"), snapshotWarmup: "true && python3 -c pass")
        let vm = VMConfiguration(
            image: try Fixtures.image(in: directory), vcpus: 1, memoryMiB: 128, bootTimeout: .seconds(30),
            runtimeDirectory: directory.file("run"))
        return (FirecrackerDriver(configuration: configuration), vm)
    }

    private func job(_ driver: FirecrackerDriver, _ vm: VMConfiguration, id: String) async throws -> (AgentHello, RunResult) {
        try await driver.withVM(vm, logger: Fixtures.logger) { session in
            (session.hello, try await session.run(RunRequest(id: id, workload: .shell(command: "echo \(id)")), timeout: .seconds(5)))
        }
    }

    private func calls(_ requests: [FakeFirecracker.Request]) -> [String] {
        requests.map { "\($0.method) \($0.uri)" }
    }

    /// Checked against the project's contract of the Firecracker API (FirecrackerContract.swift).
    private func contractViolations(_ requests: [FakeFirecracker.Request]) -> [String] {
        requests.flatMap { FirecrackerContract.violations(method: $0.method, path: $0.uri, body: $0.body) }
    }

    private func snapshotDirectories(_ directory: TemporaryDirectory) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.file("snapshots"))) ?? [])
            .filter { !$0.hasSuffix(".lock") }.sorted()
    }

    /// Nothing outlives the VMs: every VMM started (template, restored, cold) is gone and reaped,
    /// every runtime directory removed.
    private func expectNothingLeft(_ directory: TemporaryDirectory, vmms: Int) {
        let pids = Fixtures.allPIDs(in: directory)
        #expect(pids.count == vmms)
        for pid in pids { #expect(!Fixtures.processExists(pid), "VMM \(pid) survived") }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: directory.file("run"))) ?? []).isEmpty)
        #expect(!snapshotDirectories(directory).contains { $0.hasSuffix(".partial") })
    }

    @Test func theRestoreStepsAreNamed() {
        #expect(FirecrackerDriver().restoreStepNames == [
            "validate", "prepare-runtime-dir", "link-snapshot", "spawn", "wait-api-socket", "put-logger", "put-metrics",
            "load-snapshot", "connect-agent", "resume-agent",
        ])
    }

    @Test func theTemplateIsSavedOnceAndEveryVMIsRestoredFromIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)

            let (firstHello, first) = try await job(driver, vm, id: "job-1")
            #expect(calls(peer.requests) == Self.templateCalls + Self.restoreCalls)
            #expect(contractViolations(peer.requests).isEmpty)
            // The template ran our warm-up and its shell job, never a job; the job ran in the restored VM.
            #expect(peer.runs.map(\.id) == ["snapshot-warmup", "snapshot-shell-job", "job-1"])
            #expect(peer.runs.dropFirst().first?.workload == .shell(command: "true"))
            #expect(peer.runs.first?.workload == .shell(command: "true && python3 -c pass"))
            #expect(first.verdict == .ok)
            #expect(firstHello.resumeNonce != nil)
            #expect(firstHello.resumeNonce == peer.resumes.last?.nonce)
            #expect(peer.resumes.count == 1)

            // Saved into the template's own directory, which no other VM shares.
            let create = try #require(peer.requests.first { $0.uri == "/snapshot/create" }?.object)
            #expect(create["snapshot_type"] as? String == "Full")
            let savedState = try #require(create["snapshot_path"] as? String)
            #expect(savedState.hasPrefix(directory.file("run") + "/fc-") && savedState.hasSuffix("/snapshot.state"))
            #expect(peer.requests.first { $0.method == "PATCH" }?.object?["state"] as? String == "Paused")

            // The store holds one complete snapshot, read-only.
            let stored = snapshotDirectories(directory)
            #expect(stored.count == 1)
            let snapshot = directory.file("snapshots/\(try #require(stored.first))")
            for name in ["snapshot.state", "snapshot.mem", "key"] {
                #expect(FileManager.default.fileExists(atPath: snapshot + "/" + name), "\(name) missing")
            }
            let mode = try FileManager.default.attributesOfItem(atPath: snapshot + "/snapshot.mem")[.posixPermissions] as? Int
            #expect(mode == 0o444)

            // A second VM: restored, no boot, no new snapshot.
            let before = peer.requests.count
            let (secondHello, second) = try await job(driver, vm, id: "job-2")
            let restore = Array(peer.requests[before...])
            #expect(calls(restore) == Self.restoreCalls)
            #expect(contractViolations(restore).isEmpty)
            #expect(second.id == "job-2")
            #expect(secondHello.resumeNonce == peer.resumes.last?.nonce)
            #expect(peer.resumes.count == 2)
            #expect(peer.resumes[0].nonce != peer.resumes[1].nonce)
            #expect(peer.resumes[0].entropy != peer.resumes[1].entropy)

            let load = try #require(restore.last?.object)
            #expect(load["resume_vm"] as? Bool == true)
            let memory = try #require(load["mem_backend"] as? [String: Any])
            #expect(memory["backend_type"] as? String == "File")
            // The files were linked into the restored VM's own directory, and its vsock moved there.
            let loadedState = try #require(load["snapshot_path"] as? String)
            let vmDirectory = String(loadedState.dropLast("/snapshot.state".count))
            #expect(vmDirectory.hasPrefix(directory.file("run") + "/fc-"))
            #expect(vmDirectory != String(savedState.dropLast("/snapshot.state".count)))
            #expect(memory["backend_path"] as? String == vmDirectory + "/snapshot.mem")
            #expect((load["vsock_override"] as? [String: Any])?["uds_path"] as? String == vmDirectory + "/v.sock")
            #expect(load["clock_realtime"] == nil)

            #expect(snapshotDirectories(directory) == stored)
            expectNothingLeft(directory, vmms: 3)
        }
    }

    @Test func twoVMsStartingTogetherMakeOneSnapshot() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)
            async let first = job(driver, vm, id: "a")
            async let second = job(driver, vm, id: "b")
            let results = try await [first, second]
            #expect(results.map(\.1.id) == ["a", "b"])
            #expect(results.allSatisfy { $0.0.resumeNonce != nil })
            #expect(calls(peer.requests).filter { $0 == "PUT /snapshot/create" }.count == 1)
            #expect(calls(peer.requests).filter { $0 == "PUT /snapshot/load" }.count == 2)
            // One cold boot (the template's) for three VMMs.
            #expect(calls(peer.requests).filter { $0 == "PUT /actions" }.count == 1)
            #expect(Set(peer.runs.map(\.id)) == ["snapshot-warmup", "snapshot-shell-job", "a", "b"])
            #expect(snapshotDirectories(directory).count == 1)
            expectNothingLeft(directory, vmms: 3)
        }
    }

    @Test func aSnapshotFirecrackerRefusesIsRemovedAndTheJobRunsCold() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)
            _ = try await job(driver, vm, id: "makes-the-snapshot")
            let stored = try #require(snapshotDirectories(directory).first)
            let state = directory.file("snapshots/\(stored)/snapshot.state")
            chmod(state, 0o644)
            try "not a snapshot\n".write(toFile: state, atomically: false, encoding: .utf8)

            let before = peer.requests.count
            let (hello, result) = try await job(driver, vm, id: "survives")
            #expect(result.verdict == .ok)
            #expect(result.id == "survives")
            #expect(hello.resumeNonce == nil)
            // The refused load, then a whole cold boot in a fresh VMM.
            #expect(calls(Array(peer.requests[before...])) == Self.restoreCalls + Array(Self.templateCalls.prefix(8)))
            #expect(!FileManager.default.fileExists(atPath: directory.file("snapshots/\(stored)")))

            // The next VM makes a new snapshot and is restored from it again.
            let (again, _) = try await job(driver, vm, id: "restored-again")
            #expect(again.resumeNonce != nil)
            #expect(calls(peer.requests).filter { $0 == "PUT /snapshot/create" }.count == 2)
            expectNothingLeft(directory, vmms: 6)
        }
    }

    @Test func aTemplateThatCannotBeSavedLeavesNothingAndTheJobRunsCold() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(
            apiSocketPath: directory.file("peer.sock"),
            responder: { $0.uri == "/snapshot/create" ? .fault(status: 400, "Create snapshot error: no space left") : nil }
        ) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)
            let (hello, result) = try await job(driver, vm, id: "cold")
            #expect(result.id == "cold")
            #expect(hello.resumeNonce == nil)
            #expect(calls(peer.requests) == Self.templateCalls + Array(Self.templateCalls.prefix(8)))
            #expect(snapshotDirectories(directory).isEmpty)
            expectNothingLeft(directory, vmms: 2)
        }
    }

    @Test func aRestoredAgentThatRefusesItsResumeInvalidatesTheSnapshot() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)
            _ = try await job(driver, vm, id: "first")
            // The load succeeds, but the restored agent answers its resume with an error.
            peer.rejectResumes()
            let stored = try #require(snapshotDirectories(directory).first)
            let (hello, result) = try await job(driver, vm, id: "second")
            #expect(result.id == "second")
            #expect(hello.resumeNonce == nil)
            #expect(!FileManager.default.fileExists(atPath: directory.file("snapshots/\(stored)")))
            expectNothingLeft(directory, vmms: 4)
        }
    }

    @Test func aJailedVMIsRestoredInsideItsOwnChrootFromFilesItCannotAlter() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let chrootBase = directory.file("jail")
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock"), hostPath: Fixtures.jailedHostPath(in: directory)) { peer in
            let firecracker = try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)
            try Fixtures.standInJailer(in: directory, firecracker: firecracker)
            let jailer = JailerConfiguration(jailerPath: directory.file("bin/jailer"), chrootBaseDirectory: chrootBase)
            let driver = FirecrackerDriver(configuration: .init(
                firecrackerPath: firecracker, jailer: jailer, snapshotDirectory: directory.file("snapshots"), snapshotWarmup: "true"))
            var vm = VMConfiguration(image: try Fixtures.image(in: directory), memoryMiB: 128, bootTimeout: .seconds(30))
            vm.runtimeDirectory = directory.file("run")
            let stored = { directory.file("snapshots/\(snapshotDirectories(directory).first ?? "-")/snapshot.mem") }
            let (hello, linked) = try await driver.withVM(vm, logger: Fixtures.logger) { session in
                let jail = try #require(try FileManager.default.contentsOfDirectory(atPath: chrootBase + "/firecracker").first)
                let inJail = try FileManager.default.attributesOfItem(atPath: "\(chrootBase)/firecracker/\(jail)/root/snapshot.mem")[.systemFileNumber] as? Int
                _ = try await session.run(RunRequest(id: "jailed", workload: .shell(command: "true")), timeout: .seconds(5))
                return (session.hello, inJail)
            }
            #expect(hello.resumeNonce == peer.resumes.last?.nonce)
            #expect(calls(peer.requests) == Self.templateCalls + Self.restoreCalls)
            #expect(contractViolations(peer.requests).isEmpty)
            let create = try #require(peer.requests.first { $0.uri == "/snapshot/create" }?.object)
            #expect(create["snapshot_path"] as? String == "/snapshot.state")
            #expect(create["mem_file_path"] as? String == "/snapshot.mem")
            let load = try #require(peer.requests.last?.object)
            #expect(load["snapshot_path"] as? String == "/snapshot.state")
            #expect((load["mem_backend"] as? [String: Any])?["backend_path"] as? String == "/snapshot.mem")
            #expect((load["vsock_override"] as? [String: Any])?["uds_path"] as? String == "/v.sock")

            // The chroot's file is the store's (a hard link), owned by us and read-only: the jailed
            // VMM (uid 64000, the template's uid too) can map it but never change it for later VMs.
            let store = try FileManager.default.attributesOfItem(atPath: stored())
            #expect(linked != nil && linked == store[.systemFileNumber] as? Int)
            #expect((store[.ownerAccountID] as? NSNumber)?.uint32Value == geteuid())
            #expect(store[.posixPermissions] as? Int == 0o444)
            for pid in Fixtures.allPIDs(in: directory) { #expect(!Fixtures.processExists(pid)) }
            #expect(Fixtures.allPIDs(in: directory).count == 2)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: chrootBase + "/firecracker")) ?? []).isEmpty)
        }
    }

    @Test func cancellingARestoredVMTearsItDownAndKeepsTheSnapshot() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in
            let (driver, vm) = try setUp(directory, peer: peer)
            let booted = AsyncStream<String?>.makeStream()
            let task = Task {
                try await driver.withVM(vm, logger: Fixtures.logger) { session in
                    booted.continuation.yield(session.hello.resumeNonce)
                    try await Task.sleep(for: .seconds(600))
                }
            }
            var iterator = booted.stream.makeAsyncIterator()
            let nonce = await iterator.next()
            #expect(nonce != nil)
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(snapshotDirectories(directory).count == 1)
            expectNothingLeft(directory, vmms: 2)
        }
    }

    @Test func theKeyNamesEverythingThatShapesTheMachine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let binary = try Fixtures.fakeBinary(in: directory, peerSocket: directory.file("unused.sock"))
        let vm = VMConfiguration(image: try Fixtures.image(in: directory), vcpus: 1, memoryMiB: 128, runtimeDirectory: directory.file("run"))
        let base = FirecrackerDriver.Configuration(firecrackerPath: binary)
        let key = try FirecrackerDriver(configuration: base).snapshotKey(for: vm)
        #expect(try FirecrackerDriver(configuration: base).snapshotKey(for: vm) == key)
        #expect(key.text.hasPrefix("codebench-firecracker-snapshot 1\n"))
        #expect(key.text.contains("firecracker \(binary) size="))
        #expect(key.text.contains(#"machine machine-config {"mem_size_mib":128,"smt":false,"vcpu_count":1}"#))

        var bigger = vm
        bigger.memoryMiB = 256
        var variants: [FirecrackerDriver.Configuration] = []
        for change in 0..<5 {
            var configuration = base
            switch change {
            case 0: configuration.snapshotWarmup = nil
            case 1: configuration.entropyDevice = false
            case 2: configuration.guestCID = 4
            case 3: configuration.serialConsole = false
            default: configuration.jailer = JailerConfiguration(chrootBaseDirectory: directory.file("jail"))
            }
            variants.append(configuration)
        }
        var names: Set<String> = [key.name, try FirecrackerDriver(configuration: base).snapshotKey(for: bigger).name]
        for variant in variants { names.insert(try FirecrackerDriver(configuration: variant).snapshotKey(for: vm).name) }
        #expect(names.count == 7)
        // The per-VM paths (runtime directory, VM id) are not part of the machine.
        var elsewhere = vm
        elsewhere.runtimeDirectory = directory.file("other")
        #expect(try FirecrackerDriver(configuration: base).snapshotKey(for: elsewhere) == key)
    }
}
