extension RunRequest {
    /// The fields of revision 2 this request uses, named as a job names them (docs/wire-contract.md):
    /// `tests` (with its checker and per-case limits), `files`, `args`, `compiler_options`, and the
    /// limits `cpu_time_ms`, `max_file_size_mb`, `compile_wall_time_ms` and `compile_memory_mb`
    /// (also when an operator's default set them). Empty for a request any agent runs as meant.
    public var revision2Fields: [String] {
        var fields: [String] = []
        if judge != nil { fields.append("tests") }
        if !files.isEmpty { fields.append("files") }
        if case .project = workload { fields.append("entry") }
        if !arguments.isEmpty { fields.append("args") }
        if !compilerOptions.isEmpty { fields.append("compiler_options") }
        if limits.cpuTimeMilliseconds != nil { fields.append("limits.cpu_time_ms") }
        if limits.maxFileSizeBytes != nil { fields.append("limits.max_file_size_mb") }
        if limits.compileWallTimeMilliseconds != nil { fields.append("limits.compile_wall_time_ms") }
        if limits.compileMemoryBytes != nil { fields.append("limits.compile_memory_mb") }
        return fields
    }

    /// The lowest ``AgentHello/announcedRevision`` that runs this request as meant.
    public var requiredRevision: Int { revision2Fields.isEmpty ? 1 : 2 }
}

extension AgentHello {
    /// The agent's ``agentProtocolRevision``: agents before revision 2 announced none, so they are revision 1.
    public var announcedRevision: Int { revision ?? 1 }

    /// Why this agent must not be sent `request`, or nil. An agent of an older revision decodes the
    /// fields it does not know as absent: it would run a judge job once, unjudged, or a program without
    /// its CPU or file-size limit, and report success. The host refuses instead, naming the fields.
    public func problem(running request: RunRequest) -> String? {
        guard announcedRevision < request.requiredRevision else { return nil }
        return "the guest agent speaks protocol revision \(announcedRevision), and this job's "
            + request.revision2Fields.joined(separator: ", ")
            + " need revision \(request.requiredRevision) (an older agent would ignore them): "
            + "the worker's guest image needs rebuilding with the current agent (scripts/build-guest-image)"
    }
}
