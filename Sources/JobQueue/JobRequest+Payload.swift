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
        }
        if !stdin.isEmpty { fields["stdin"] = .string(String(decoding: stdin, as: UTF8.self)) }
        if let timeoutMilliseconds { fields["timeout_ms"] = .int(timeoutMilliseconds) }
        if network { fields["network"] = .bool(true) }
        var limitFields: [String: JSONValue] = [:]
        limitFields["wall_time_ms"] = limits.wallTimeMilliseconds.map(JSONValue.int)
        if let memoryMiB = limits.memoryMiB {
            limitFields["memory_mb"] = .int(memoryMiB)
        } else {
            limitFields["memory_bytes"] = limits.memoryBytes.map(JSONValue.int)
        }
        limitFields["processes"] = limits.processes.map(JSONValue.int)
        limitFields["output_bytes"] = limits.outputBytes.map(JSONValue.int)
        if !limitFields.isEmpty { fields["limits"] = .object(limitFields) }
        return JSONValue.object(fields).serialized
    }
}
