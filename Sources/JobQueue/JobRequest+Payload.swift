import FoundationEssentials

extension JobRequest {
    /// The job as a platform pushes it (`RPUSH jobs <payload>`): the wire contract's JSON, which
    /// ``JobParser`` reads back into an equal request. Used by clients such as `codebench-worker submit`,
    /// so they never spell the contract's field names themselves.
    public var payload: String {
        var fields: [String: JSONValue] = ["id": .string(id)]
        switch workload {
        case .shell(let command):
            fields["command"] = .string(command)
        case .program(let language, let source):
            fields["language"] = .string(language.rawValue)
            fields["code"] = .string(source)
        case .project(let language, let entry):
            fields["language"] = .string(language.rawValue)
            if entry != language.defaultEntry { fields["entry"] = .string(entry) }
        }
        if !stdin.isEmpty { fields["stdin"] = .string(String(decoding: stdin, as: UTF8.self)) }
        if let timeoutMilliseconds { fields["timeout_ms"] = .int(timeoutMilliseconds) }
        if network { fields["network"] = .bool(true) }
        if stream { fields["stream"] = .bool(true) }
        fields["limits"] = limits.payload
        if !files.isEmpty { fields["files"] = .array(files.map(\.payload)) }
        if !arguments.isEmpty { fields["args"] = .array(arguments.map(JSONValue.string)) }
        fields["compiler_options"] = compilerOptions.map { .array($0.map(JSONValue.string)) }
        if let judge {
            fields["tests"] = .array(judge.tests.map(\.payload))
            fields["compare"] = judge.comparison.map { .string($0.name) }
            fields["checker"] = judge.checker.map { .object(["language": .string($0.language.rawValue), "code": .string($0.code)]) }
            if judge.stopOnFailure { fields["stop_on_failure"] = .bool(true) }
        }
        return JSONValue.object(fields).serialized
    }
}

extension JobRequest.RequestedLimits {
    /// The `limits` object, or nil when nothing was asked for.
    var payload: JSONValue? {
        var limitFields: [String: JSONValue] = [:]
        limitFields["wall_time_ms"] = wallTimeMilliseconds.map(JSONValue.int)
        if let memoryMiB {
            limitFields["memory_mb"] = .int(memoryMiB)
        } else {
            limitFields["memory_bytes"] = memoryBytes.map(JSONValue.int)
        }
        limitFields["processes"] = processes.map(JSONValue.int)
        limitFields["output_bytes"] = outputBytes.map(JSONValue.int)
        limitFields["cpu_time_ms"] = cpuTimeMilliseconds.map(JSONValue.int)
        limitFields["compile_wall_time_ms"] = compileWallTimeMilliseconds.map(JSONValue.int)
        limitFields["compile_memory_mb"] = compileMemoryMiB.map(JSONValue.int)
        limitFields["max_file_size_mb"] = maxFileSizeMiB.map(JSONValue.int)
        return limitFields.isEmpty ? nil : .object(limitFields)
    }
}

extension JobFile {
    /// UTF-8 text travels as itself, anything else as base64.
    var payload: JSONValue {
        if let text = String(validating: content, as: UTF8.self) {
            return .object(["name": .string(name), "content": .string(text)])
        }
        return .object(["name": .string(name), "content": .string(Data(content).base64EncodedString()), "encoding": "base64"])
    }
}

extension JobTestCase {
    var payload: JSONValue {
        var fields: [String: JSONValue] = [:]
        fields["name"] = name.map(JSONValue.string)
        fields["stdin"] = stdin.map { .string(String(decoding: $0, as: UTF8.self)) }
        fields["args"] = arguments.map { .array($0.map(JSONValue.string)) }
        fields["expected_output"] = expectedOutput.map { .string(String(decoding: $0, as: UTF8.self)) }
        fields["limits"] = limits.payload
        return .object(fields)
    }
}
