import Foundation

/// A JSON value as sent on the wire; decoding keeps `true` and `1` apart, which JSONSerialization
/// (NSNumber for both) does not.
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let value): "[\(value.map(\.description).joined(separator: ","))]"
        case .object(let value): "{\(value.keys.sorted().joined(separator: ","))}"
        }
    }
}

/// The subset of JSON Schema (swagger 2.0 flavour) the Firecracker spec uses: `$ref` to
/// `#/definitions/...`, `type`, `required`, `properties`, `enum`, `minimum`/`maximum`, `items`,
/// `additionalProperties`.
///
/// `strictProperties` (on by default) also rejects properties a schema does not declare: Firecracker
/// deserialises every body with `deny_unknown_fields`, so an undeclared property is a 400 there even
/// though the swagger document does not say `additionalProperties: false`.
struct SchemaValidator {
    let definitions: [String: Any]
    var strictProperties = true

    func validate(_ value: JSONValue, against schema: [String: Any], at location: String) -> [String] {
        if let reference = schema["$ref"] as? String {
            let prefix = "#/definitions/"
            guard reference.hasPrefix(prefix), let target = definitions[String(reference.dropFirst(prefix.count))] as? [String: Any] else {
                return ["\(location): unresolvable $ref \(reference)"]
            }
            return validate(value, against: target, at: location)
        }
        var errors: [String] = []
        if let type = schema["type"] as? String, !Self.value(value, hasType: type) {
            return ["\(location): expected \(type), got \(value)"]
        }
        if let allowed = schema["enum"] as? [Any] {
            let texts = allowed.flatMap(Self.enumSpellings)
            let actual: String? = switch value {
            case .string(let text): text
            case .integer(let number): "\(number)"
            case .bool(let flag): "\(flag)"
            default: nil
            }
            if actual.map({ !texts.contains($0) }) ?? true {
                errors.append("\(location): \(value) is not one of \(texts)")
            }
        }
        if let minimum = Self.number(schema["minimum"]), let actual = Self.number(value), actual < minimum {
            errors.append("\(location): \(actual) is below the minimum \(minimum)")
        }
        if let maximum = Self.number(schema["maximum"]), let actual = Self.number(value), actual > maximum {
            errors.append("\(location): \(actual) is above the maximum \(maximum)")
        }
        if case .array(let items) = value, let itemSchema = schema["items"] as? [String: Any] {
            for (index, item) in items.enumerated() {
                errors += validate(item, against: itemSchema, at: "\(location)[\(index)]")
            }
        }
        if case .object(let members) = value {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for required in schema["required"] as? [String] ?? [] where members[required] == nil {
                errors.append("\(location): required property \(required) is missing")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = properties[name] as? [String: Any] {
                    errors += validate(member, against: propertySchema, at: "\(location).\(name)")
                } else if let additional = schema["additionalProperties"] {
                    if let allowed = additional as? Bool {
                        if !allowed { errors.append("\(location): property \(name) is not allowed") }
                    } else if let additionalSchema = additional as? [String: Any] {
                        errors += validate(member, against: additionalSchema, at: "\(location).\(name)")
                    }
                } else if strictProperties {
                    errors.append("\(location): property \(name) is not declared by the schema")
                }
            }
        }
        return errors
    }

    /// The spellings an enum member stands for. The spec is YAML 1.1, where an unquoted `Off` (in
    /// `Logger.level`) is the boolean false: such a member means its string spellings.
    private static func enumSpellings(_ member: Any) -> [String] {
        switch member {
        case let flag as Bool: flag ? ["On", "Yes", "true"] : ["Off", "No", "false"]
        default: ["\(member)"]
        }
    }

    private static func value(_ value: JSONValue, hasType type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("integer", .integer),
            ("number", .integer), ("number", .number):
            return true
        default:
            return false
        }
    }

    private static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .integer(let number): Double(number)
        case .number(let number): number
        default: nil
        }
    }

    private static func number(_ value: Any?) -> Double? {
        switch value {
        case let number as Int: Double(number)
        case let number as Double: number
        default: nil
        }
    }
}
