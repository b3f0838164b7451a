import TestSupport
import FirecrackerDriver
import Foundation
import MicroVM
import AgentProtocol
import Testing

/// Every request the driver and the client can send, captured at a peer from the real code paths,
/// checked against the project's own description of the Firecracker v1.16.1 API
/// (``FirecrackerContract``). Nothing here reads the official spec; ContractAgreementTests compares
/// the contract with it where it is available.
@Suite struct ContractTests {
    @Test func theContractIsClosedAndFindsOperationsByTemplate() {
        #expect(FirecrackerContract.version == "1.16.1")
        #expect(FirecrackerContract.closureProblems().isEmpty, "\(FirecrackerContract.closureProblems())")
        #expect(FirecrackerContract.operation(method: "PUT", path: "/drives/rootfs")?.path == "/drives/{drive_id}")
        #expect(FirecrackerContract.operation(method: "PUT", path: "/drives/") == nil)
        #expect(FirecrackerContract.operation(method: "GET", path: "/")?.reply == "InstanceInfo")
        #expect(FirecrackerContract.operation(method: "GET", path: "/drives/rootfs") == nil)

        // The closure check can fail both ways.
        var definitions = FirecrackerContract.definitions
        definitions["TokenBucket"] = nil
        definitions["Balloon"] = .object(required: ["amount_mib": .integer()])
        #expect(FirecrackerContract.closureProblems(definitions: definitions) == [
            "Balloon is defined but no operation reaches it", "TokenBucket is referenced but not defined",
        ])
    }

    @Test func everyRequestTheDriverAndClientSendConformsToTheContract() async throws {
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
        let operations = Set(requests.map { "\(FirecrackerContract.operation(method: $0.method, path: $0.uri)?.description ?? "\($0.method) \($0.uri)")" })
        #expect(operations == [
            "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/{drive_id}",
            "PUT /entropy", "PUT /vsock", "PUT /actions", "PATCH /vm", "PUT /snapshot/create", "PUT /snapshot/load",
            "GET /", "GET /version",
        ])
        // The contract describes what is sent, no more.
        #expect(Set(FirecrackerContract.operations.map(\.description)) == operations)
        var violations: [String] = []
        for request in requests {
            violations += FirecrackerContract.violations(method: request.method, path: request.uri, body: request.body)
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
        ("GET", "/version", "{}", "accepts no body"),
        ("PUT", "/logger", #"{"log_path":"/l","level":"false"}"#, "is not one of"),
        ("PUT", "/machine-config", #"{"vcpu_count":2,"mem_size_mib":256,"cpu_template":"T3"}"#, "is not one of"),
        ("PUT", "/snapshot/load", #"{"snapshot_path":"/s","network_overrides":[{"iface_id":"eth0"}]}"#, "required property host_dev_name"),
        ("PUT", "/entropy", #"{"rate_limiter":{"ops":{"size":-1,"refill_time":100}}}"#, "below the minimum"),
    ])
    func theValidatorRejectsBodiesTheContractForbids(method: String, path: String, body: String, expected: String) {
        let violations = FirecrackerContract.violations(method: method, path: path, body: Array(body.utf8))
        #expect(violations.contains { $0.contains(expected) }, "\(violations)")
    }

    /// Every level the client's enum offers is one Firecracker accepts, "Off" included (the official
    /// YAML writes it unquoted, which a YAML 1.1 reader would take for false).
    @Test func everyLoggerLevelTheClientOffersIsInTheContract() throws {
        for level in FirecrackerLogger.Level.allCases {
            let body = try JSONEncoder().encode(FirecrackerLogger(logPath: "/l", level: level))
            let violations = FirecrackerContract.violations(method: "PUT", path: "/logger", body: Array(body))
            #expect(violations.isEmpty, "\(level): \(violations)")
        }
    }

    /// The replies the client decodes: bodies the contract allows decode with the client's types, and
    /// the client's types carry no field the contract does not describe.
    @Test func theClientDecodesTheRepliesTheContractDescribes() throws {
        let validator = SchemaValidator(definitions: FirecrackerContract.definitions)
        func check<T: Codable & Equatable>(_ json: String, as type: T.Type, definition: String, expected: T) throws {
            let reply = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
            #expect(validator.validate(reply, against: .reference(definition), at: definition).isEmpty)
            let decoded = try JSONDecoder().decode(T.self, from: Data(json.utf8))
            #expect(decoded == expected)
            let encoded = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(decoded))
            #expect(validator.validate(encoded, against: .reference(definition), at: definition).isEmpty, "\(encoded)")
        }
        try check(
            #"{"app_name":"Firecracker","id":"vm-1","state":"Not started","vmm_version":"1.16.1"}"#, as: InstanceInfo.self,
            definition: "InstanceInfo", expected: InstanceInfo(appName: "Firecracker", id: "vm-1", state: "Not started", vmmVersion: "1.16.1"))
        try check(
            #"{"firecracker_version":"1.16.1"}"#, as: FirecrackerVersion.self,
            definition: "FirecrackerVersion", expected: FirecrackerVersion(firecrackerVersion: "1.16.1"))
        let fault = try JSONDecoder().decode(FirecrackerFault.self, from: Data(#"{"fault_message":"bad"}"#.utf8))
        #expect(fault.faultMessage == "bad")
        let encodedFault = try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(fault))
        #expect(validator.validate(encodedFault, against: .reference(FirecrackerContract.errorDefinition), at: "Error").isEmpty)
        // The reply check can fail: a state outside the enum.
        let wrong = try JSONDecoder().decode(JSONValue.self, from: Data(#"{"app_name":"a","id":"b","state":"Stopped","vmm_version":"c"}"#.utf8))
        #expect(validator.validate(wrong, against: .reference("InstanceInfo"), at: "InstanceInfo").contains { $0.contains("is not one of") })
    }
}
