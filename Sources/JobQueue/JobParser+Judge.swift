import FoundationEssentials
import Judging

// The fields of judge mode (docs/wire-contract.md): files, entry, args, compiler_options, tests,
// compare, checker, stop_on_failure. Read from the same Document as every other field.
extension JobParser {
    func readFiles(_ reader: FieldReader) throws -> [JobFile] {
        guard let entries = try reader.array("files") else { return [] }
        let context = reader.context
        if entries.count > WorkFileRules.maximumFiles {
            throw context.invalid(
                .invalidField, "invalid job: field 'files' has \(entries.count) entries, the maximum is \(WorkFileRules.maximumFiles)")
        }
        var files: [JobFile] = []
        var total = 0
        for (index, entry) in entries.enumerated() {
            let field = "files[\(index)]"
            guard case .object(let members) = entry else {
                throw context.invalid(.invalidField, "invalid job: field '\(field)' must be an object, got \(entry.typeName)")
            }
            let file = FieldReader(fields: members, context: context, prefix: field + ".")
            guard let name = try file.string("name") else {
                throw context.invalid(.invalidField, "invalid job: field '\(field).name' is missing")
            }
            if let problem = WorkFileRules.problem(name: name) {
                throw context.invalid(.invalidField, "invalid job: field '\(field).name' \(problem)")
            }
            guard let text = try file.string("content") else {
                throw context.invalid(.invalidField, "invalid job: field '\(field).content' is missing")
            }
            let content: [UInt8]
            switch try file.string("encoding") ?? "utf8" {
            case "utf8":
                content = Array(text.utf8)
            case "base64":
                guard let decoded = Data(base64Encoded: text) else {
                    throw context.invalid(.invalidField, "invalid job: field '\(field).content' is not valid base64")
                }
                content = Array(decoded)
            case let other:
                throw context.invalid(
                    .invalidField, "invalid job: field '\(field).encoding' must be 'utf8' or 'base64', got '\(other)'")
            }
            total += content.count
            files.append(JobFile(name: name, content: content))
        }
        if let clash = WorkFileRules.clash(names: files.map(\.name)) {
            throw context.invalid(.invalidField, "invalid job: field 'files' names '\(clash)' twice (or as a file and a directory)")
        }
        if total > maximumPayloadBytes {
            throw context.invalid(.invalidField, "invalid job: field 'files' holds \(total) bytes, the maximum is \(maximumPayloadBytes)")
        }
        return files
    }

    /// The file a project runs: `entry`, else the language's default name; it must be one of the files.
    func projectEntry(_ language: JobLanguage, _ entry: String?, _ files: [JobFile], _ context: Context) throws -> String {
        if let entry {
            if let problem = WorkFileRules.problem(name: entry) {
                throw context.invalid(.invalidField, "invalid job: field 'entry' \(problem)")
            }
            guard files.contains(where: { $0.name == entry }) else {
                throw context.invalid(.invalidField, "invalid job: field 'entry' names '\(entry)', which is not in 'files'")
            }
            return entry
        }
        guard files.contains(where: { $0.name == language.defaultEntry }) else {
            throw context.invalid(
                .invalidField,
                "invalid job: field 'files' has no '\(language.defaultEntry)', the entry point for \(language.rawValue) "
                    + "without 'code' (or name another with 'entry')")
        }
        return language.defaultEntry
    }

    /// `compiler_options`: a string (split at whitespace, as a shell would without quotes) or a list of strings.
    func readCompilerOptions(_ reader: FieldReader) throws -> [String]? {
        guard let value = reader.present("compiler_options") else { return nil }
        if case .string(let text) = value {
            return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        }
        guard case .array = value else { throw reader.wrongType("compiler_options", "a string or an array of strings", value) }
        return try reader.stringList("compiler_options")
    }

    func readJudge(_ reader: FieldReader) throws -> JobJudge? {
        let context = reader.context
        let compare = try reader.string("compare")
        let checker = try readChecker(reader)
        let stopOnFailure = try reader.bool("stop_on_failure")
        guard let entries = try reader.array("tests") else {
            for (field, present) in [("compare", compare != nil), ("checker", checker != nil), ("stop_on_failure", stopOnFailure != nil)]
            where present {
                throw context.invalid(.invalidField, "invalid job: field '\(field)' needs 'tests'")
            }
            return nil
        }
        if entries.isEmpty { throw context.invalid(.invalidField, "invalid job: field 'tests' must not be empty") }
        var comparison: Comparison?
        if let compare {
            guard let parsed = Comparison(parsing: compare) else {
                throw context.invalid(
                    .invalidField, "invalid job: field 'compare' must be one of \(Comparison.spellings), got '\(compare)'")
            }
            comparison = parsed
        }
        if comparison != nil && checker != nil {
            throw context.invalid(.invalidField, "invalid job: fields 'compare' and 'checker' are mutually exclusive")
        }
        var tests: [JobTestCase] = []
        for (index, entry) in entries.enumerated() {
            let field = "tests[\(index)]"
            guard case .object(let members) = entry else {
                throw context.invalid(.invalidField, "invalid job: field '\(field)' must be an object, got \(entry.typeName)")
            }
            let test = FieldReader(fields: members, context: context, prefix: field + ".")
            tests.append(JobTestCase(
                name: try test.string("name"), stdin: try test.string("stdin").map { Array($0.utf8) },
                arguments: try test.stringList("args"), expectedOutput: try test.string("expected_output").map { Array($0.utf8) },
                limits: try readLimits(test)))
        }
        return JobJudge(tests: tests, comparison: comparison, checker: checker, stopOnFailure: stopOnFailure ?? false)
    }

    private func readChecker(_ reader: FieldReader) throws -> JobChecker? {
        guard let members = try reader.object("checker") else { return nil }
        let context = reader.context
        let checker = FieldReader(fields: members, context: context, prefix: "checker.")
        guard let name = try checker.string("language") else {
            throw context.invalid(.invalidField, "invalid job: field 'checker.language' is missing")
        }
        guard let language = context.languages.language(named: name) else {
            throw context.invalid(
                .unknownLanguage, "invalid job: field 'checker.language' has unknown language '\(name)' (known: \(context.languages.knownList))")
        }
        guard let code = try checker.string("code", nonEmpty: true) else {
            throw context.invalid(.invalidField, "invalid job: field 'checker.code' is missing")
        }
        return JobChecker(language: language, code: code)
    }
}

extension JobParser.FieldReader {
    func array(_ name: String) throws -> [JSONValue]? {
        guard let value = present(name) else { return nil }
        guard case .array(let values) = value else { throw wrongType(name, "an array", value) }
        return values
    }

    /// An array whose every element is a string; the refusal names the element (`args[2]`).
    func stringList(_ name: String) throws -> [String]? {
        guard let values = try array(name) else { return nil }
        return try values.enumerated().map { index, value in
            guard case .string(let string) = value else {
                throw context.invalid(
                    .invalidField, "invalid job: field '\(prefix)\(name)[\(index)]' must be a string, got \(value.typeName)")
            }
            return string
        }
    }
}
