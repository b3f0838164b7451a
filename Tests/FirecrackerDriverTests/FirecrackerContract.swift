import Foundation

/// The project's own description of the Firecracker API facts the driver depends on: the operations
/// `FirecrackerDriver` and `FirecrackerAPIClient` send, whether each takes a body, and every
/// definition those bodies and the decoded replies reach, with all its properties.
///
/// Written from the official spec of Firecracker **v1.16.1** (`firecracker-v1.16.1-api.yaml`,
/// swagger 2.0), which is not in the repository. The contract tests validate requests against this
/// description, so they need nothing outside the repository; `contractAgreesWithTheOfficialSpec`
/// compares it with the official file wherever that file is available (see `FirecrackerSpec`).
///
/// Left out on purpose: prose, default values (Firecracker fills absent fields in itself; the driver
/// sends what it means), `format: int64` (fits in `Int`) and rules the swagger document only states in
/// prose (SMT needs an even vCPU count; exactly one of `mem_backend`/`mem_file_path`).
enum FirecrackerContract {
    static let version = "1.16.1"

    /// A body or property shape. Objects are closed: Firecracker deserialises every body with serde's
    /// `deny_unknown_fields`, so an undeclared property is a 400 there even though the swagger document
    /// does not say `additionalProperties: false`.
    indirect enum Schema: Sendable, Equatable {
        case object(required: [String: Schema], optional: [String: Schema] = [:])
        /// `oneOf` lists the accepted spellings exactly (Firecracker's enums are case-sensitive serde
        /// variants, except `Logger.level`, which the driver sends in the listed spelling anyway).
        case string(oneOf: [String]? = nil)
        case integer(minimum: Int? = nil, maximum: Int? = nil)
        case boolean
        case array(of: Schema)
        /// Another entry of ``FirecrackerContract/definitions``, by name.
        case reference(String)
    }

    /// One endpoint and method.
    struct Operation: Sendable, Equatable, CustomStringConvertible {
        enum Body: Sendable, Equatable, CustomStringConvertible {
            /// The operation takes no body; sending one is an error here.
            case none
            /// A body is accepted but may be left out.
            case optional(String)
            case required(String)

            var description: String {
                switch self {
                case .none: "no body"
                case .optional(let name): "an optional \(name)"
                case .required(let name): "a required \(name)"
                }
            }
        }

        var method: String
        /// The path template, `{name}` standing for one non-empty segment.
        var path: String
        var body: Body
        /// The definition of the 2xx reply's body; nil for `204 No Content`.
        var reply: String?

        init(_ method: String, _ path: String, body: Body = .none, reply: String? = nil) {
            self.method = method
            self.path = path
            self.body = body
            self.reply = reply
        }

        var description: String { "\(method) \(path)" }

        /// Whether `concretePath` (`/drives/rootfs`) is an instance of the template (`/drives/{drive_id}`).
        func matches(method: String, path concretePath: String) -> Bool {
            guard method == self.method else { return false }
            let template = path.split(separator: "/", omittingEmptySubsequences: false)
            let actual = concretePath.split(separator: "/", omittingEmptySubsequences: false)
            return template.count == actual.count && zip(template, actual).allSatisfy { pattern, segment in
                pattern == segment || (pattern.hasPrefix("{") && pattern.hasSuffix("}") && !segment.isEmpty)
            }
        }
    }

    /// The body of every 4xx/5xx reply, which the client reads `fault_message` from.
    static let errorDefinition = "Error"

    /// Exactly the operations the driver and the client send (ContractTests checks both directions).
    static let operations: [Operation] = [
        // Pre-boot configuration, in the order a cold boot sends it.
        Operation("PUT", "/logger", body: .required("Logger")),
        Operation("PUT", "/metrics", body: .required("Metrics")),
        // The only body Firecracker lets us leave out: it would keep its defaults (1 vCPU, 128 MiB).
        Operation("PUT", "/machine-config", body: .optional("MachineConfiguration")),
        Operation("PUT", "/boot-source", body: .required("BootSource")),
        Operation("PUT", "/drives/{drive_id}", body: .required("Drive")),
        Operation("PUT", "/entropy", body: .required("EntropyDevice")),
        Operation("PUT", "/vsock", body: .required("Vsock")),
        Operation("PUT", "/actions", body: .required("InstanceActionInfo")),
        // State and snapshots (warm starts).
        Operation("PATCH", "/vm", body: .required("Vm")),
        Operation("PUT", "/snapshot/create", body: .required("SnapshotCreateParams")),
        Operation("PUT", "/snapshot/load", body: .required("SnapshotLoadParams")),
        // Queries: no body, a JSON reply.
        Operation("GET", "/", reply: "InstanceInfo"),
        Operation("GET", "/version", reply: "FirecrackerVersion"),
    ]

    /// Every definition the operations above reach, through bodies, replies and nested references.
    static let definitions: [String: Schema] = [
        "BootSource": .object(
            required: ["kernel_image_path": .string()],
            optional: ["boot_args": .string(), "initrd_path": .string()]),
        // Deprecated upstream; reachable from MachineConfiguration, never sent by the driver.
        "CpuTemplate": .string(oneOf: ["C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"]),
        "Drive": .object(
            required: ["drive_id": .string(), "is_root_device": .boolean],
            optional: [
                "partuuid": .string(),
                "cache_type": .string(oneOf: ["Unsafe", "Writeback"]),
                // `is_read_only` and `path_on_host` are needed for virtio-block (what we use) and
                // must be absent for vhost-user-block, hence optional to the schema.
                "is_read_only": .boolean,
                "path_on_host": .string(),
                "rate_limiter": .reference("RateLimiter"),
                "io_engine": .string(oneOf: ["Sync", "Async"]),
                "socket": .string(),
            ]),
        "EntropyDevice": .object(required: [:], optional: ["rate_limiter": .reference("RateLimiter")]),
        "Error": .object(required: [:], optional: ["fault_message": .string()]),
        "FirecrackerVersion": .object(required: ["firecracker_version": .string()]),
        "InstanceActionInfo": .object(
            required: ["action_type": .string(oneOf: ["FlushMetrics", "InstanceStart", "SendCtrlAltDel"])]),
        "InstanceInfo": .object(required: [
            "app_name": .string(),
            "id": .string(),
            // Note the space in "Not started"; the client keeps the state as a plain string.
            "state": .string(oneOf: ["Not started", "Running", "Paused"]),
            "vmm_version": .string(),
        ]),
        // The official YAML writes the last level unquoted, which a YAML 1.1 reader takes for the
        // boolean false; Firecracker means the string "Off" (FirecrackerSpec reads enums as written).
        "Logger": .object(
            required: [:],
            optional: [
                "level": .string(oneOf: ["Error", "Warning", "Info", "Debug", "Trace", "Off"]),
                "log_path": .string(),
                "show_level": .boolean,
                "show_log_origin": .boolean,
                "module": .string(),
            ]),
        "MachineConfiguration": .object(
            required: ["mem_size_mib": .integer(), "vcpu_count": .integer(minimum: 1, maximum: 32)],
            optional: [
                "cpu_template": .reference("CpuTemplate"),
                "smt": .boolean,
                "track_dirty_pages": .boolean,
                "huge_pages": .string(oneOf: ["None", "2M"]),
            ]),
        "MemoryBackend": .object(required: ["backend_type": .string(oneOf: ["File", "Uffd"]), "backend_path": .string()]),
        "Metrics": .object(required: ["metrics_path": .string()]),
        "NetworkOverride": .object(required: ["iface_id": .string(), "host_dev_name": .string()]),
        "RateLimiter": .object(required: [:], optional: ["bandwidth": .reference("TokenBucket"), "ops": .reference("TokenBucket")]),
        "SnapshotCreateParams": .object(
            required: ["mem_file_path": .string(), "snapshot_path": .string()],
            optional: ["snapshot_type": .string(oneOf: ["Full", "Diff"])]),
        "SnapshotLoadParams": .object(
            required: ["snapshot_path": .string()],
            optional: [
                "enable_diff_snapshots": .boolean,  // deprecated name of track_dirty_pages
                "track_dirty_pages": .boolean,
                "mem_file_path": .string(),  // deprecated; the driver sends mem_backend
                "mem_backend": .reference("MemoryBackend"),
                "resume_vm": .boolean,
                "network_overrides": .array(of: .reference("NetworkOverride")),
                "vsock_override": .reference("VsockOverride"),
                "clock_realtime": .boolean,
            ]),
        "TokenBucket": .object(
            required: ["refill_time": .integer(minimum: 0), "size": .integer(minimum: 0)],
            optional: ["one_time_burst": .integer(minimum: 0)]),
        "Vm": .object(required: ["state": .string(oneOf: ["Paused", "Resumed"])]),
        // CIDs 0-2 are reserved by the vsock address family.
        "Vsock": .object(
            required: ["guest_cid": .integer(minimum: 3), "uds_path": .string()],
            optional: ["vsock_id": .string()]),
        "VsockOverride": .object(required: ["uds_path": .string()]),
    ]

    /// The contract operation `method` on a concrete path is an instance of, if any.
    static func operation(method: String, path: String) -> Operation? {
        operations.first { $0.matches(method: method, path: path) }
    }

    /// Every violation of the contract by one request: unknown path or method, a body where none is
    /// accepted, a missing required body, a body that does not validate against its definition.
    static func violations(method: String, path: String, body: [UInt8]) -> [String] {
        guard let operation = operation(method: method, path: path) else {
            return ["\(method) \(path): no such operation in the contract"]
        }
        let definition: String
        switch operation.body {
        case .none:
            return body.isEmpty ? [] : ["\(operation): the contract accepts no body, the request sent \(body.count) bytes"]
        case .optional(let name):
            if body.isEmpty { return [] }
            definition = name
        case .required(let name):
            if body.isEmpty { return ["\(operation): body required, none sent"] }
            definition = name
        }
        let json: JSONValue
        do {
            json = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            return ["\(operation): body is not JSON: \(error)"]
        }
        return SchemaValidator(definitions: definitions).validate(json, against: .reference(definition), at: "\(operation) body")
    }

    /// The definitions an operation names directly: its body, its reply, and the error body.
    static func roots(of operations: [Operation]) -> [String] {
        var names = [errorDefinition]
        for operation in operations {
            switch operation.body {
            case .none: break
            case .optional(let name), .required(let name): names.append(name)
            }
            if let reply = operation.reply { names.append(reply) }
        }
        return names
    }

    /// The contract must be closed and minimal: every reference names a definition, and every
    /// definition is reachable from an operation (else it describes nothing the driver depends on).
    static func closureProblems(definitions: [String: Schema] = definitions, operations: [Operation] = operations) -> [String] {
        var problems: [String] = []
        var reached: Set<String> = []
        var pending = roots(of: operations)
        while let name = pending.popLast() {
            guard reached.insert(name).inserted else { continue }
            guard let schema = definitions[name] else {
                problems.append("\(name) is referenced but not defined")
                continue
            }
            pending += references(in: schema)
        }
        for name in definitions.keys where !reached.contains(name) {
            problems.append("\(name) is defined but no operation reaches it")
        }
        return problems.sorted()
    }

    static func references(in schema: Schema) -> [String] {
        switch schema {
        case .reference(let name): [name]
        case .array(let items): references(in: items)
        case .object(let required, let optional): (Array(required.values) + Array(optional.values)).flatMap(references(in:))
        case .string, .integer, .boolean: []
        }
    }
}
