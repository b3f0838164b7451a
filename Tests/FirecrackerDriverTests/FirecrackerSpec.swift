import Foundation
import Yams

/// The official Firecracker API spec (swagger 2.0 YAML), loaded from outside the repository:
/// `$CODEBENCH_FIRECRACKER_SPEC`, else `<repo>/../shared/firecracker/firecracker-v1.16.1-api.yaml`.
struct FirecrackerSpec {
    static let fileName = "firecracker-v1.16.1-api.yaml"

    let path: String
    let version: String
    /// `paths` with string keys all the way down.
    let paths: [String: Any]
    let definitions: [String: Any]

    static var location: String {
        if let override = ProcessInfo.processInfo.environment["CODEBENCH_FIRECRACKER_SPEC"], !override.isEmpty {
            return override
        }
        // <repo>/Tests/FirecrackerDriverTests/FirecrackerSpec.swift -> <repo>
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/firecracker/\(fileName)").path
    }

    static func load() throws -> FirecrackerSpec {
        let path = location
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SpecError("cannot read the Firecracker API spec at \(path) (set CODEBENCH_FIRECRACKER_SPEC)")
        }
        guard let root = normalise(try Yams.load(yaml: text)) as? [String: Any],
            let paths = root["paths"] as? [String: Any], let definitions = root["definitions"] as? [String: Any],
            let info = root["info"] as? [String: Any]
        else {
            throw SpecError("\(path) is not a swagger document with paths and definitions")
        }
        return FirecrackerSpec(path: path, version: "\(info["version"] ?? "?")", paths: paths, definitions: definitions)
    }

    /// YAML mappings can have non-string keys (`200:`); the spec is read with string keys.
    private static func normalise(_ value: Any?) -> Any {
        switch value {
        case let mapping as [AnyHashable: Any]:
            var result: [String: Any] = [:]
            for (key, item) in mapping { result["\(key.base)"] = normalise(item) }
            return result
        case let mapping as [String: Any]:
            return mapping.mapValues { normalise($0) }
        case let sequence as [Any]:
            return sequence.map { normalise($0) }
        case let value?:
            return value
        case nil:
            return NSNull()
        }
    }

    /// The operation for `method` on a concrete path (`/drives/rootfs` matches `/drives/{drive_id}`).
    func operation(method: String, path: String) -> (template: String, operation: [String: Any])? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, item) in paths {
            let templateSegments = template.split(separator: "/", omittingEmptySubsequences: false)
            guard templateSegments.count == segments.count else { continue }
            let matches = zip(templateSegments, segments).allSatisfy { pattern, actual in
                pattern == actual || (pattern.hasPrefix("{") && pattern.hasSuffix("}") && !actual.isEmpty)
            }
            if matches, let item = item as? [String: Any], let operation = item[method.lowercased()] as? [String: Any] {
                return (template, operation)
            }
        }
        return nil
    }

    /// Every violation of the spec by one request: unknown path or method, a body where none is
    /// accepted, a missing required body, a body that does not validate against its schema.
    func violations(method: String, path: String, body: [UInt8]) -> [String] {
        guard let (template, operation) = operation(method: method, path: path) else {
            return ["\(method) \(path): no such operation in the spec"]
        }
        let parameters = operation["parameters"] as? [[String: Any]] ?? []
        let bodyParameter = parameters.first { $0["in"] as? String == "body" }
        let name = "\(method) \(template)"
        guard let bodyParameter else {
            return body.isEmpty ? [] : ["\(name): the spec accepts no body, the request sent \(body.count) bytes"]
        }
        if body.isEmpty {
            return bodyParameter["required"] as? Bool == true ? ["\(name): body required, none sent"] : []
        }
        let json: JSONValue
        do {
            json = try JSONDecoder().decode(JSONValue.self, from: Data(body))
        } catch {
            return ["\(name): body is not JSON: \(error)"]
        }
        guard let schema = bodyParameter["schema"] as? [String: Any] else { return ["\(name): body parameter without schema"] }
        return SchemaValidator(definitions: definitions).validate(json, against: schema, at: "\(name) body")
    }
}

struct SpecError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
