import FoundationEssentials
import Judging

/// The agent's side of the protocol in ``WireJSON``: it reads what the host sends (`run`, `resume`,
/// `shutdown`) and writes what it answers (`hello`, `result`, `error`, `output`), in the shapes
/// Foundation's Codable gives them on the host (an enum case is `{"case":{"_0":…}}`, `Data` is base64,
/// an absent optional is left out).
extension AgentMessage {
    /// A message from the host. Anything else the agent would not accept anyway is refused here.
    public static func decodeWire(_ bytes: [UInt8]) throws(WireJSON.Failure) -> AgentMessage {
        let message = try WireJSONFields(try WireJSON.parse(bytes), path: "message")
        guard message.members.count == 1, let (name, body) = message.members.first else {
            throw WireJSON.Failure(offset: 0, reason: "a message is an object with one member")
        }
        switch name {
        case "shutdown": return .shutdown
        case "run": return .run(try RunRequest(wire: try WireJSONFields(body, path: "run").object("_0")))
        case "resume": return .resume(try AgentResume(wire: try WireJSONFields(body, path: "resume").object("_0")))
        default: throw WireJSON.Failure(offset: 0, reason: "the agent only accepts run, resume and shutdown messages, not \(name)")
        }
    }

    /// A message of the agent's, as JSON.
    public func encodeWire() -> [UInt8] {
        let (name, body): (String, WireJSON.Value)
        switch self {
        case .hello(let hello): (name, body) = ("hello", hello.wire)
        case .result(let result): (name, body) = ("result", result.wire)
        case .error(let error): (name, body) = ("error", .object([("code", .string(error.code.rawValue)), ("message", .string(error.message))]))
        case .output(let chunk): (name, body) = ("output", chunk.wire)
        case .run(let request): (name, body) = ("run", request.wire)
        case .resume(let resume): (name, body) = ("resume", resume.wire)
        case .shutdown: return WireJSON.serialize(.object([("shutdown", .object([]))]))
        }
        return WireJSON.serialize(.object([(name, .object([("_0", body)]))]))
    }
}

extension RunRequest {
    init(wire fields: WireJSONFields) throws(WireJSON.Failure) {
        let workloadFields = try fields.object("workload")
        guard workloadFields.members.count == 1, let (kind, body) = workloadFields.members.first else {
            throw WireJSON.Failure(offset: 0, reason: "run.workload is an object with one member")
        }
        let workload: Workload
        let details = try WireJSONFields(body, path: "run.workload.\(kind)")
        switch kind {
        case "shell": workload = .shell(command: try details.string("command"))
        case "program": workload = .program(language: Language(try details.string("language")), source: try details.string("source"))
        case "project": workload = .project(language: Language(try details.string("language")), entry: try details.string("entry"))
        default: throw WireJSON.Failure(offset: 0, reason: "run.workload has an unknown kind \(kind)")
        }
        var files: [WorkFile] = []
        for (index, file) in (try fields.optionalArray("files") ?? []).enumerated() {
            let entry = try WireJSONFields(file, path: "run.files[\(index)]")
            files.append(WorkFile(name: try entry.string("name"), content: try entry.data("content")))
        }
        self.init(
            id: try fields.string("id"), workload: workload, stdin: try fields.data("stdin"),
            limits: try ResourceLimits(wire: try fields.object("limits")), files: files,
            arguments: try fields.strings("arguments") ?? [], compilerOptions: try fields.strings("compilerOptions") ?? [],
            judge: try fields.optional("judge").map { (value) throws(WireJSON.Failure) in try JudgeSpec(wire: try WireJSONFields(value, path: "run.judge")) })
        streamOutput = try fields.optionalBool("streamOutput") ?? false
        tracePhases = try fields.optionalBool("tracePhases") ?? false
        prepareNextRequest = try fields.optionalBool("prepareNextRequest") ?? false
        nextRequestLimits = try fields.optional("nextRequestLimits").map { (value) throws(WireJSON.Failure) in
            try ResourceLimits(wire: try WireJSONFields(value, path: "run.nextRequestLimits"))
        }
        preparedRequests = try fields.optionalInteger("preparedRequests")
        prepareForkServers = try fields.optionalBool("prepareForkServers") ?? false
    }

    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("id", id)
        let workloadValue: WireJSON.Value
        switch workload {
        case .shell(let command): workloadValue = .object([("shell", .object([("command", .string(command))]))])
        case .program(let language, let source):
            workloadValue = .object([("program", .object([("language", .string(language.rawValue)), ("source", .string(source))]))])
        case .project(let language, let entry):
            workloadValue = .object([("project", .object([("language", .string(language.rawValue)), ("entry", .string(entry))]))])
        }
        object.add("workload", workloadValue)
        object.add("stdin", stdin)
        object.add("limits", limits.wire)
        if !files.isEmpty { object.add("files", .array(files.map { .object([("name", .string($0.name)), ("content", .string($0.content.base64EncodedString()))]) })) }
        if !arguments.isEmpty { object.add("arguments", .array(arguments.map { .string($0) })) }
        if !compilerOptions.isEmpty { object.add("compilerOptions", .array(compilerOptions.map { .string($0) })) }
        if let judge { object.add("judge", judge.wire) }
        if streamOutput { object.add("streamOutput", true) }
        if tracePhases { object.add("tracePhases", true) }
        if prepareNextRequest { object.add("prepareNextRequest", true) }
        if let nextRequestLimits { object.add("nextRequestLimits", nextRequestLimits.wire) }
        if let preparedRequests { object.add("preparedRequests", preparedRequests) }
        if prepareForkServers { object.add("prepareForkServers", true) }
        return object.value
    }
}

extension ResourceLimits {
    init(wire fields: WireJSONFields) throws(WireJSON.Failure) {
        self.init(
            wallTimeMilliseconds: try fields.integer("wallTimeMilliseconds"), memoryBytes: try fields.integer("memoryBytes"),
            maxProcesses: try fields.integer("maxProcesses"), maxOutputBytesPerStream: try fields.integer("maxOutputBytesPerStream"),
            cpuTimeMilliseconds: try fields.optionalInteger("cpuTimeMilliseconds"), maxFileSizeBytes: try fields.optionalInteger("maxFileSizeBytes"),
            compileWallTimeMilliseconds: try fields.optionalInteger("compileWallTimeMilliseconds"),
            compileMemoryBytes: try fields.optionalInteger("compileMemoryBytes"))
    }

    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("wallTimeMilliseconds", wallTimeMilliseconds)
        object.add("memoryBytes", memoryBytes)
        object.add("maxProcesses", maxProcesses)
        object.add("maxOutputBytesPerStream", maxOutputBytesPerStream)
        object.addIfPresent("cpuTimeMilliseconds", cpuTimeMilliseconds)
        object.addIfPresent("maxFileSizeBytes", maxFileSizeBytes)
        object.addIfPresent("compileWallTimeMilliseconds", compileWallTimeMilliseconds)
        object.addIfPresent("compileMemoryBytes", compileMemoryBytes)
        return object.value
    }
}

extension JudgeSpec {
    init(wire fields: WireJSONFields) throws(WireJSON.Failure) {
        var tests: [TestCase] = []
        for (index, value) in try fields.array("tests").enumerated() {
            let test = try WireJSONFields(value, path: "run.judge.tests[\(index)]")
            tests.append(TestCase(
                name: try test.string("name"), stdin: try test.data("stdin"), arguments: try test.strings("arguments") ?? [],
                expectedOutput: try test.optionalData("expectedOutput"), limits: try ResourceLimits(wire: try test.object("limits"))))
        }
        let comparisonText = try fields.string("comparison")
        guard let comparison = Comparison(parsing: comparisonText) else { throw fields.failure("comparison", "is unknown: \(comparisonText)") }
        let checker = try fields.optional("checker").map { (value) throws(WireJSON.Failure) -> CheckerSpec in
            let spec = try WireJSONFields(value, path: "run.judge.checker")
            return CheckerSpec(language: Language(try spec.string("language")), source: try spec.string("source"))
        }
        self.init(
            tests: tests, comparison: comparison, checker: checker, stopOnFailure: try fields.bool("stopOnFailure"),
            caseOutputBytes: try fields.integer("caseOutputBytes"), checkerLimits: try ResourceLimits(wire: try fields.object("checkerLimits")))
    }

    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("tests", .array(tests.map { test in
            var entry = WireJSONObject()
            entry.add("name", test.name)
            entry.add("stdin", test.stdin)
            entry.add("arguments", .array(test.arguments.map { .string($0) }))
            entry.addIfPresent("expectedOutput", test.expectedOutput)
            entry.add("limits", test.limits.wire)
            return entry.value
        }))
        object.add("comparison", comparison.name)
        if let checker { object.add("checker", .object([("language", .string(checker.language.rawValue)), ("source", .string(checker.source))])) }
        object.add("stopOnFailure", stopOnFailure)
        object.add("caseOutputBytes", caseOutputBytes)
        object.add("checkerLimits", checkerLimits.wire)
        return object.value
    }
}

extension AgentResume {
    init(wire fields: WireJSONFields) throws(WireJSON.Failure) {
        self.init(
            nonce: try fields.string("nonce"), unixTimeNanoseconds: try fields.integer("unixTimeNanoseconds", as: Int64.self),
            entropy: try fields.data("entropy"))
        tracePhases = try fields.optionalBool("tracePhases")
    }

    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("nonce", nonce)
        object.add("unixTimeNanoseconds", unixTimeNanoseconds)
        object.add("entropy", entropy)
        if let tracePhases { object.add("tracePhases", tracePhases) }
        return object.value
    }
}

extension AgentHello {
    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("protocolVersion", protocolVersion)
        object.add("agentVersion", agentVersion)
        object.add("kernel", kernel)
        object.addIfPresent("resumeNonce", resumeNonce)
        object.addIfPresent("revision", revision)
        if let phases { object.add("phases", phases.wire) }
        return object.value
    }
}

extension RunResult {
    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("id", id)
        object.add("verdict", verdict.rawValue)
        object.addIfPresent("exitCode", exitCode)
        object.addIfPresent("signal", signal)
        object.add("stdout", stdout)
        object.add("stderr", stderr)
        object.add("stdoutTruncated", stdoutTruncated)
        object.add("stderrTruncated", stderrTruncated)
        object.add("wallTimeMilliseconds", wallTimeMilliseconds)
        object.add("cpuTimeMilliseconds", cpuTimeMilliseconds)
        object.add("peakMemoryBytes", peakMemoryBytes)
        object.addIfPresent("compileOutput", compileOutput)
        object.addIfPresent("message", message)
        if let tests { object.add("tests", .array(tests.map(\.wire))) }
        if let phases { object.add("phases", phases.wire) }
        return object.value
    }
}

extension [AgentPhase] {
    var wire: WireJSON.Value {
        .array(map { .object([("name", .string($0.name)), ("microseconds", .integer(Int64($0.microseconds)))]) })
    }
}

extension TestResult {
    var wire: WireJSON.Value {
        var object = WireJSONObject()
        object.add("name", name)
        object.add("verdict", verdict.rawValue)
        object.addIfPresent("exitCode", exitCode)
        object.addIfPresent("signal", signal)
        object.add("wallTimeMilliseconds", wallTimeMilliseconds)
        object.add("cpuTimeMilliseconds", cpuTimeMilliseconds)
        object.add("peakMemoryBytes", peakMemoryBytes)
        object.add("stdout", stdout)
        object.add("stderr", stderr)
        object.add("stdoutTruncated", stdoutTruncated)
        object.add("stderrTruncated", stderrTruncated)
        object.addIfPresent("message", message)
        return object.value
    }
}

extension OutputChunk {
    var wire: WireJSON.Value {
        .object([("id", .string(id)), ("stream", .string(stream.rawValue)), ("offset", .integer(Int64(offset))), ("data", .string(data.base64EncodedString()))])
    }
}
