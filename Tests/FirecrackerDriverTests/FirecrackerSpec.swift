import Foundation
import Yams

/// The official Firecracker API spec (swagger 2.0 YAML). It is not in the repository and nothing
/// needs it but `contractAgreesWithTheOfficialSpec` (and the test that proves that comparison can
/// fail), which compare it with the project's own ``FirecrackerContract`` wherever the file exists:
/// `$CODEBENCH_FIRECRACKER_SPEC`, else `<repo>/../shared/firecracker/firecracker-v1.16.1-api.yaml`.
struct FirecrackerSpec {
    static let fileName = "firecracker-v1.16.1-api.yaml"
    static let environmentVariable = "CODEBENCH_FIRECRACKER_SPEC"

    let path: String
    let version: String
    /// `paths` with string keys all the way down.
    let paths: [String: Any]
    let definitions: [String: Any]

    /// `<repo>`, from this file's place in it (`<repo>/Tests/FirecrackerDriverTests/FirecrackerSpec.swift`).
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where the official file is looked for: the environment variable when set and not empty, else
    /// the `shared` folder beside the repository.
    static func location(environment: [String: String] = ProcessInfo.processInfo.environment, repository: URL = repository) -> String {
        if let override = environment[environmentVariable], !override.isEmpty {
            return override
        }
        return repository.deletingLastPathComponent().appendingPathComponent("shared/firecracker/\(fileName)").standardizedFileURL.path
    }

    /// The spec at `path`, nil when there is no file there; a file that is there but unreadable or not
    /// a swagger document is an error, not a reason to skip.
    static func load(from path: String = location()) throws -> FirecrackerSpec? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SpecError("cannot read the Firecracker API spec at \(path)")
        }
        return try parse(text, path: path)
    }

    static func parse(_ text: String, path: String) throws -> FirecrackerSpec {
        guard let node = try Yams.compose(yaml: text), let root = normalise(node, key: nil) as? [String: Any],
            let paths = root["paths"] as? [String: Any], let definitions = root["definitions"] as? [String: Any],
            let info = root["info"] as? [String: Any]
        else {
            throw SpecError("\(path) is not a swagger document with paths and definitions")
        }
        return FirecrackerSpec(path: path, version: "\(info["version"] ?? "?")", paths: paths, definitions: definitions)
    }

    /// Plain dictionaries with string keys (YAML allows `200:`). Enum members are kept as written:
    /// the spec is YAML 1.1, where the unquoted `Off` in `Logger.level`'s enum would load as the
    /// boolean false, while Firecracker means the string "Off".
    private static func normalise(_ node: Node, key: String?) -> Any {
        switch node {
        case .mapping(let mapping):
            var result: [String: Any] = [:]
            for (name, value) in mapping {
                let text = name.scalar?.string ?? "\(name.any)"
                result[text] = normalise(value, key: text)
            }
            return result
        case .sequence(let sequence):
            if key == "enum" {
                return sequence.map { $0.scalar?.string ?? "\($0.any)" }
            }
            return sequence.map { normalise($0, key: nil) }
        case .scalar, .alias:
            return node.any
        }
    }

    // MARK: Agreement with the project's contract

    /// Every way the contract differs from this spec: a missing operation, a different body
    /// (presence, requiredness, definition), reply or error body, and for every contract definition a
    /// different property set, required set, type, enum, minimum/maximum, item type or reference.
    /// Empty when they agree.
    func disagreements(
        version contractVersion: String = FirecrackerContract.version,
        operations: [FirecrackerContract.Operation] = FirecrackerContract.operations,
        definitions contractDefinitions: [String: FirecrackerContract.Schema] = FirecrackerContract.definitions
    ) -> [String] {
        var problems: [String] = []
        if contractVersion != version {
            problems.append("version: the contract describes \(contractVersion), the spec at \(path) is \(version)")
        }
        for operation in operations {
            problems += disagreements(operation)
        }
        for (name, schema) in contractDefinitions.sorted(by: { $0.key < $1.key }) {
            guard let official = definitions[name] as? [String: Any] else {
                problems.append("\(name): no such definition in the official spec")
                continue
            }
            problems += Self.disagreements(schema, official, at: name)
        }
        return problems
    }

    private func disagreements(_ operation: FirecrackerContract.Operation) -> [String] {
        guard let item = paths[operation.path] as? [String: Any], let official = item[operation.method.lowercased()] as? [String: Any] else {
            return ["\(operation): no such operation in the official spec"]
        }
        var problems: [String] = []
        let parameters = official["parameters"] as? [[String: Any]] ?? []
        let bodies = parameters.filter { $0["in"] as? String == "body" }
        let officialBody: FirecrackerContract.Operation.Body
        if let body = bodies.first {
            let schema = body["schema"] as? [String: Any] ?? [:]
            let name = Self.definitionName(schema) ?? "an inline schema"
            officialBody = body["required"] as? Bool == true ? .required(name) : .optional(name)
        } else {
            officialBody = .none
        }
        if bodies.count > 1 { problems.append("\(operation): the official spec declares \(bodies.count) body parameters") }
        if officialBody != operation.body {
            problems.append("\(operation): body is \(operation.body) in the contract, \(officialBody) in the official spec")
        }

        let responses = official["responses"] as? [String: Any] ?? [:]
        let successes = responses.filter { Int($0.key).map { (200..<300).contains($0) } ?? false }
        let replies = Set(successes.values.map { response in
            ((response as? [String: Any])?["schema"] as? [String: Any]).map { Self.definitionName($0) ?? "an inline schema" }
        })
        if replies != [operation.reply] {
            problems.append("\(operation): reply is \(operation.reply ?? "no body") in the contract, \(replies.map { $0 ?? "no body" }.sorted()) in the official spec")
        }
        for (status, response) in responses.sorted(by: { $0.key < $1.key }) where successes[status] == nil {
            let schema = (response as? [String: Any])?["schema"] as? [String: Any] ?? [:]
            if Self.definitionName(schema) != FirecrackerContract.errorDefinition {
                problems.append("\(operation): the \(status) reply is not \(FirecrackerContract.errorDefinition) in the official spec")
            }
        }
        return problems
    }

    private static let definitionPrefix = "#/definitions/"

    private static func definitionName(_ schema: [String: Any]) -> String? {
        guard let reference = schema["$ref"] as? String, reference.hasPrefix(definitionPrefix) else { return nil }
        return String(reference.dropFirst(definitionPrefix.count))
    }

    /// Keywords the contract describes, and those it leaves out on purpose (see FirecrackerContract).
    /// Any other keyword (`additionalProperties`, `pattern`, `allOf`, ...) is a constraint the contract
    /// cannot express, which the comparison reports rather than ignores.
    private static let describedKeywords: Set = ["$ref", "type", "properties", "required", "enum", "minimum", "maximum", "items"]
    private static let ignoredKeywords: Set = ["description", "default", "example", "format", "readOnly", "title"]

    static func disagreements(_ contract: FirecrackerContract.Schema, _ official: [String: Any], at location: String) -> [String] {
        var problems = official.keys.sorted().filter { !describedKeywords.contains($0) && !ignoredKeywords.contains($0) }.map {
            "\(location): the official spec uses `\($0)`, which the contract does not describe"
        }
        let type = official["type"] as? String
        let officialEnum = official["enum"] as? [String]
        let minimum = number(official["minimum"])
        let maximum = number(official["maximum"])

        if case .reference(let name) = contract {
            let officialName = definitionName(official)
            if officialName != name {
                problems.append("\(location): the contract refers to \(name), the official spec has \(officialName.map { "a reference to \($0)" } ?? "type \(type ?? "none")")")
            }
            return problems
        }
        if let officialName = definitionName(official) {
            return problems + ["\(location): the official spec refers to \(officialName), the contract has \(contract)"]
        }
        let contractType: String = switch contract {
        case .object: "object"
        case .string: "string"
        case .integer: "integer"
        case .boolean: "boolean"
        case .array: "array"
        case .reference: "reference"
        }
        if type != contractType {
            return problems + ["\(location): type is \(contractType) in the contract, \(type ?? "none") in the official spec"]
        }

        var contractEnum: [String]?
        var contractMinimum: Int?
        var contractMaximum: Int?
        switch contract {
        case .string(let allowed):
            contractEnum = allowed
        case .integer(let lower, let upper):
            contractMinimum = lower
            contractMaximum = upper
        case .array(let items):
            problems += disagreements(items, official["items"] as? [String: Any] ?? [:], at: "\(location)[]")
        case .object(let required, let optional):
            problems += objectDisagreements(required: required, optional: optional, official, at: location)
        case .boolean, .reference:
            break
        }
        if contractEnum?.sorted() != officialEnum?.sorted() {
            problems.append("\(location): enum is \(contractEnum.map { "\($0)" } ?? "none") in the contract, \(officialEnum.map { "\($0)" } ?? "none") in the official spec")
        }
        if contractMinimum.map(Double.init) != minimum {
            problems.append("\(location): minimum is \(contractMinimum.map(String.init) ?? "none") in the contract, \(minimum.map { "\($0)" } ?? "none") in the official spec")
        }
        if contractMaximum.map(Double.init) != maximum {
            problems.append("\(location): maximum is \(contractMaximum.map(String.init) ?? "none") in the contract, \(maximum.map { "\($0)" } ?? "none") in the official spec")
        }
        return problems
    }

    private static func objectDisagreements(
        required: [String: FirecrackerContract.Schema], optional: [String: FirecrackerContract.Schema], _ official: [String: Any], at location: String
    ) -> [String] {
        var problems: [String] = []
        let properties = official["properties"] as? [String: Any] ?? [:]
        let officialRequired = Set(official["required"] as? [String] ?? [])
        let contractProperties = required.merging(optional) { first, _ in first }
        for name in Set(required.keys).intersection(optional.keys).sorted() {
            problems.append("\(location).\(name): both required and optional in the contract")
        }
        for name in Set(properties.keys).subtracting(contractProperties.keys).sorted() {
            problems.append("\(location).\(name): in the official spec, missing from the contract")
        }
        for name in Set(contractProperties.keys).subtracting(properties.keys).sorted() {
            problems.append("\(location).\(name): in the contract, not in the official spec")
        }
        for name in officialRequired.symmetricDifference(required.keys).sorted() {
            let side = officialRequired.contains(name) ? "required in the official spec, not in the contract" : "required in the contract, not in the official spec"
            problems.append("\(location).\(name): \(side)")
        }
        for (name, schema) in contractProperties.sorted(by: { $0.key < $1.key }) {
            if let property = properties[name] as? [String: Any] {
                problems += disagreements(schema, property, at: "\(location).\(name)")
            }
        }
        return problems
    }

    private static func number(_ value: Any?) -> Double? {
        switch value {
        case let number as Int: Double(number)
        case let number as Double: number
        default: nil
        }
    }
}

struct SpecError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
