import TestSupport
import FirecrackerDriver
import Foundation
import MicroVM
import AgentProtocol
import Testing

/// Every request the driver and the client can send, captured at a peer from the real code paths,
/// checked against the official Firecracker API spec.
@Suite struct ContractTests {
    @Test func specLoadsFromTheSharedFolder() throws {
        let spec = try FirecrackerSpec.load()
        #expect(spec.version == "1.16.1")
        #expect(spec.definitions["MachineConfiguration"] != nil)
        #expect(spec.operation(method: "PUT", path: "/drives/rootfs")?.template == "/drives/{drive_id}")
    }

    @Test func everyRequestTheDriverAndClientSendConformsToTheSpec() async throws {
        let spec = try FirecrackerSpec.load()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try await FakeFirecracker.with(apiSocketPath: directory.file("peer.sock")) { peer in

        // 1. A whole boot and a job through the driver.
        let driver = FirecrackerDriver(configuration: .init(firecrackerPath: try Fixtures.fakeBinary(in: directory, peerSocket: peer.apiSocketPath)))
        let vm = VMConfiguration(image: try Fixtures.image(in: directory), vcpus: 2, memoryMiB: 256, bootTimeout: .seconds(30), runtimeDirectory: directory.file("run"))
        let result = try await driver.withVM(vm, logger: Fixtures.logger) { session in
            try await session.run(RunRequest(id: "job-1", workload: .shell(command: "true")), timeout: .seconds(5))
        }
        #expect(result.verdict == .ok)

        // 2. Everything else the client offers, including the snapshot calls for warm starts.
        let client = FirecrackerAPIClient(socketPath: peer.apiSocketPath)
        try await client.pause()
        try await client.createSnapshot(SnapshotCreateParams(snapshotType: .full, snapshotPath: directory.file("vm.state"), memFilePath: directory.file("vm.mem")))
        try await client.createSnapshot(SnapshotCreateParams(snapshotType: .diff, snapshotPath: directory.file("vm.diff"), memFilePath: directory.file("vm.diffmem")))
        try await client.resume()
        try await client.loadSnapshot(SnapshotLoadParams(
            snapshotPath: directory.file("vm.state"), memBackend: MemoryBackend(backendType: .file, backendPath: directory.file("vm.mem")),
            trackDirtyPages: true, resumeVm: true, vsockOverride: VsockOverride(udsPath: directory.file("c.sock")), clockRealtime: true))
        try await client.sendCtrlAltDel()
        _ = try await client.describeInstance()
        _ = try await client.version()
        try await client.putLogger(FirecrackerLogger(logPath: "/l", level: .trace, showLevel: true, showLogOrigin: true))
        try await client.putMachineConfiguration(MachineConfiguration(vcpuCount: 32, memSizeMib: 128, smt: false, trackDirtyPages: true))

        let requests = peer.requests
        let operations = Set(requests.map { "\($0.method) \(spec.operation(method: $0.method, path: $0.uri)?.template ?? $0.uri)" })
        #expect(operations == [
            "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/{drive_id}",
            "PUT /entropy", "PUT /vsock", "PUT /actions", "PATCH /vm", "PUT /snapshot/create", "PUT /snapshot/load",
            "GET /", "GET /version",
        ])
        var violations: [String] = []
        for request in requests {
            violations += spec.violations(method: request.method, path: request.uri, body: request.body)
        }
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
        }
    }

    /// The validator must be able to fail, or the contract test above proves nothing.
    @Test(arguments: [
        ("PUT", "/machine-config", #"{"vcpu_count":0,"mem_size_mib":128}"#, "below the minimum"),
        ("PUT", "/machine-config", #"{"vcpu_count":33,"mem_size_mib":128}"#, "above the maximum"),
        ("PUT", "/machine-config", #"{"vcpu_count":1}"#, "required property mem_size_mib"),
        ("PUT", "/machine-config", #"{"vcpu_count":1,"mem_size_mib":"128"}"#, "expected integer"),
        ("PUT", "/drives/rootfs", #"{"drive_id":"rootfs","is_root_device":1}"#, "expected boolean"),
        ("PUT", "/actions", #"{"action_type":"Reboot"}"#, "is not one of"),
        ("PATCH", "/vm", #"{"state":"Stopped"}"#, "is not one of"),
        ("PUT", "/vsock", #"{"guest_cid":2,"uds_path":"/v.sock"}"#, "below the minimum"),
        ("PUT", "/snapshot/load", #"{"snapshot_path":"/s","mem_backend":{"backend_type":"File"}}"#, "required property backend_path"),
        ("PUT", "/boot-source", #"{"kernel_image_path":"/k","boot_argz":"x"}"#, "not declared"),
        ("PUT", "/snapshot/load", #"{"snapshot_path":"/s","mem_backend":{"backend_type":"File","backend_path":"/m"},"vsock_override":{}}"#, "required property uds_path"),
        ("PUT", "/snapshot/create", #"{"snapshot_type":"Full","snapshot_path":"/s"}"#, "required property mem_file_path"),
        ("PUT", "/reboot", #"{}"#, "no such operation"),
        ("DELETE", "/vm", "", "no such operation"),
        ("PUT", "/actions", "", "body required"),
    ])
    func theValidatorRejectsBodiesTheSpecForbids(method: String, path: String, body: String, expected: String) throws {
        let spec = try FirecrackerSpec.load()
        let violations = spec.violations(method: method, path: path, body: Array(body.utf8))
        #expect(violations.contains { $0.contains(expected) }, "\(violations)")
    }
}
