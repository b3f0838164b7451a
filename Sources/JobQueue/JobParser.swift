/// Turns a payload from the intake list into a ``JobRequest`` or an ``InvalidJob`` whose reason names the field.
///
/// Unknown fields are ignored so that platforms can add fields without breaking older workers.
public struct JobParser: Sendable {
    /// Ids longer than this (in UTF-8 bytes) are refused: they name a Redis key.
    public static let maximumIDBytes = 256
    /// How much of a refused payload is kept on the invalid list.
    public static let rawPrefixBytes = 1024
    /// An oversized payload up to this size is still decoded, only to find the id its `failed` goes to.
    public static let idRecoveryLimitBytes = 16 << 20

    /// Payloads over this size are refused (``InvalidJob/Code/payloadTooLarge``).
    public var maximumPayloadBytes: Int
    /// The languages `language` and `variant` may name: the worker's image's.
    public var languages: JobLanguageCatalog

    public init(maximumPayloadBytes: Int = 1 << 20, languages: JobLanguageCatalog = .classic) {
        self.maximumPayloadBytes = maximumPayloadBytes
        self.languages = languages
    }

    /// Validates one payload as taken from the intake list.
    public func parse(_ payload: [UInt8]) -> Result<JobRequest, InvalidJob> {
        var context = Context(payload: payload, languages: languages)
        do {
            return .success(try parse(&context))
        } catch let error as InvalidJob {
            return .failure(error)
        } catch {
            return .failure(context.invalid(.notJSON, "invalid job: payload is not valid JSON"))
        }
    }

    /// Validates a payload given as text (its UTF-8 bytes).
    public func parse(_ payload: String) -> Result<JobRequest, InvalidJob> {
        parse(Array(payload.utf8))
    }

    private func parse(_ context: inout Context) throws -> JobRequest {
        let size = context.payload.count
        let tooLarge = size > maximumPayloadBytes
        let tooLargeReason = "invalid job: payload is \(size) bytes, the maximum is \(maximumPayloadBytes)"
        guard !tooLarge || size <= Self.idRecoveryLimitBytes else {
            throw context.invalid(.payloadTooLarge, tooLargeReason)
        }
        let document: JobJSONReader.Document
        do {
            document = try JobJSONReader.read(context.payload)
        } catch {
            throw tooLarge
                ? context.invalid(.payloadTooLarge, tooLargeReason)
                : context.invalid(.notJSON, "invalid job: payload is not valid JSON: \(error)")
        }
        guard case .object(let fields) = document.value else {
            throw tooLarge
                ? context.invalid(.payloadTooLarge, tooLargeReason)
                : context.invalid(.notObject, "invalid job: payload must be a JSON object, got \(document.value.typeName)")
        }
        // Two ids are two claims on two status lists: neither can be trusted, so the job has no readable id.
        if document.duplicateKeys.contains("id") {
            throw context.invalid(.duplicateKey, "invalid job: key 'id' appears more than once")
        }
        let id = try readID(fields, context)
        context.id = id
        if tooLarge { throw context.invalid(.payloadTooLarge, tooLargeReason) }
        if let duplicate = document.duplicateKeys.first {
            throw context.invalid(.duplicateKey, "invalid job: key '\(duplicate)' appears more than once")
        }
        if let deep = document.tooDeep {
            throw context.invalid(
                .nestingTooDeep, "invalid job: field '\(deep)' nests deeper than \(JobJSONReader.maximumDepth) levels")
        }

        let reader = FieldReader(fields: fields, context: context)
        let command = try reader.string("command", nonEmpty: true)
        let code = try reader.string("code")
        let language = try reader.language()
        let files = try readFiles(reader)
        let entry = try reader.string("entry")
        let workload: JobRequest.Workload
        if entry != nil && (code != nil || command != nil || files.isEmpty) {
            throw context.invalid(.invalidField, "invalid job: field 'entry' needs 'files' and 'language', without 'code' or 'command'")
        }
        switch (command, code) {
        case (.some, .some):
            throw context.invalid(.conflictingWorkload, "invalid job: fields 'command' and 'code' are mutually exclusive")
        case (nil, nil):
            guard let language, !files.isEmpty else {
                throw context.invalid(.missingWorkload, "invalid job: one of the fields 'command' or 'code' is required")
            }
            workload = .project(language: language, entry: try projectEntry(language, entry, files, context))
        case (let command?, nil):
            // A language next to a command is ignored (not refused): some clients send a default language.
            workload = .shell(command: command)
        case (nil, let code?):
            guard let language else {
                throw context.invalid(.invalidField, "invalid job: field 'language' is required with 'code'")
            }
            workload = .program(language: language, source: code)
        }

        let stdin = try reader.string("stdin").map { Array($0.utf8) } ?? []
        let timeout = try reader.positiveInt("timeout_ms")
        let network = try reader.bool("network") ?? false
        let limits = try readLimits(reader)
        var job = JobRequest(
            id: id, workload: workload, stdin: stdin, timeoutMilliseconds: timeout, limits: limits, network: network,
            files: files, arguments: try reader.stringList("args") ?? [], compilerOptions: try readCompilerOptions(reader),
            judge: try readJudge(reader))
        job.stream = try reader.bool("stream") ?? false
        return job
    }

    private func readID(_ fields: [String: JSONValue], _ context: Context) throws -> String {
        guard let value = fields["id"] else {
            throw context.invalid(.missingID, "invalid job: field 'id' is missing")
        }
        guard case .string(let id) = value else {
            throw context.invalid(.invalidID, "invalid job: field 'id' must be a string, got \(value.typeName)")
        }
        if let problem = Self.idProblem(id) {
            throw context.invalid(.invalidID, "invalid job: field 'id' \(problem)")
        }
        return id
    }

    /// Why `id` cannot name a status list, or nil when it can. Shared with the reaper's Lua check.
    static func idProblem(_ id: String) -> String? {
        if id.isEmpty { return "must not be empty" }
        if id.utf8.count > maximumIDBytes {
            return "is \(id.utf8.count) bytes long, the maximum is \(maximumIDBytes)"
        }
        if id.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            return "must not contain control characters"
        }
        return nil
    }

    func readLimits(_ reader: FieldReader) throws -> JobRequest.RequestedLimits {
        guard let limitFields = try reader.object("limits") else { return JobRequest.RequestedLimits() }
        let limits = FieldReader(fields: limitFields, context: reader.context, prefix: reader.prefix + "limits.")
        let memoryMB = try limits.positiveInt("memory_mb")
        let memoryBytes = try limits.positiveInt("memory_bytes")
        if memoryMB != nil && memoryBytes != nil {
            throw reader.context.invalid(
                .invalidField,
                "invalid job: fields '\(limits.prefix)memory_mb' and '\(limits.prefix)memory_bytes' are mutually exclusive")
        }
        var memory = memoryBytes
        if let memoryMB {
            let (bytes, overflow) = memoryMB.multipliedReportingOverflow(by: 1 << 20)
            if overflow { throw reader.context.invalid(.invalidField, "invalid job: field '\(limits.prefix)memory_mb' is too large") }
            memory = bytes
        }
        return JobRequest.RequestedLimits(
            wallTimeMilliseconds: try limits.positiveInt("wall_time_ms"),
            memoryBytes: memory,
            processes: try limits.positiveInt("processes"),
            outputBytes: try limits.positiveInt("output_bytes"),
            memoryMiB: memoryMB,
            cpuTimeMilliseconds: try limits.positiveInt("cpu_time_ms"),
            compileWallTimeMilliseconds: try limits.positiveInt("compile_wall_time_ms"),
            compileMemoryMiB: try limits.positiveInt("compile_memory_mb"),
            maxFileSizeMiB: try limits.positiveInt("max_file_size_mb")
        )
    }
}

extension JobParser {
    /// What a failure needs besides its reason: the id once known, and the payload for the invalid list.
    struct Context {
        init(payload: [UInt8], languages: JobLanguageCatalog = .classic) {
            self.payload = payload
            self.languages = languages
        }

        let payload: [UInt8]
        var languages: JobLanguageCatalog = .classic
        var id: String?

        func invalid(_ code: InvalidJob.Code, _ reason: String) -> InvalidJob {
            let prefix = payload.prefix(JobParser.rawPrefixBytes)
            return InvalidJob(
                code: code, id: id, reason: reason,
                rawPrefix: String(decoding: prefix, as: UTF8.self), payloadBytes: payload.count)
        }
    }

    /// Typed access to optional fields; `null` counts as absent.
    struct FieldReader {
        let fields: [String: JSONValue]
        let context: Context
        var prefix = ""

        func present(_ name: String) -> JSONValue? {
            guard let value = fields[name], value != .null else { return nil }
            return value
        }

        func wrongType(_ name: String, _ expected: String, _ value: JSONValue) -> InvalidJob {
            // A number that is not a positive integer is shown as sent ("got -5"); any other type by its name.
            let got: String
            switch (value, expected) {
            case (.int(let number), "a positive integer"): got = String(number)
            case (.double(let number), "a positive integer"): got = "\(number)"
            default: got = value.typeName
            }
            return context.invalid(.invalidField, "invalid job: field '\(prefix)\(name)' must be \(expected), got \(got)")
        }

        func string(_ name: String, nonEmpty: Bool = false) throws -> String? {
            guard let value = present(name) else { return nil }
            guard case .string(let string) = value else { throw wrongType(name, "a string", value) }
            if nonEmpty && string.isEmpty {
                throw context.invalid(.invalidField, "invalid job: field '\(prefix)\(name)' must not be empty")
            }
            return string
        }

        func bool(_ name: String) throws -> Bool? {
            guard let value = present(name) else { return nil }
            guard case .bool(let bool) = value else { throw wrongType(name, "a boolean", value) }
            return bool
        }

        func object(_ name: String) throws -> [String: JSONValue]? {
            guard let value = present(name) else { return nil }
            guard case .object(let object) = value else { throw wrongType(name, "an object", value) }
            return object
        }

        func positiveInt(_ name: String) throws -> Int? {
            guard let value = present(name) else { return nil }
            switch value {
            case .int(let number) where number > 0:
                return number
            // Some JSON encoders write 5000 as 5000.0.
            case .double(let number) where number > 0 && number.rounded() == number && number < 9e15:
                return Int(number)
            default:
                throw wrongType(name, "a positive integer", value)
            }
        }

        /// `language`, or its alias `variant` (sent by the later CodeBench API).
        func language() throws -> JobLanguage? {
            let language = try string("language")
            let variant = try string("variant")
            if let language, let variant, language != variant {
                throw context.invalid(
                    .invalidField, "invalid job: fields 'language' and 'variant' disagree ('\(language)' vs '\(variant)')")
            }
            guard let name = language ?? variant else { return nil }
            let field = language != nil ? "language" : "variant"
            guard let parsed = context.languages.language(named: name) else {
                throw context.invalid(
                    .unknownLanguage,
                    "invalid job: field '\(field)' has unknown language '\(name)' (known: \(context.languages.knownList))")
            }
            return parsed
        }
    }
}
