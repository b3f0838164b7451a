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

/// Validates a JSON value against a ``FirecrackerContract/Schema``: types, required and undeclared
/// properties, enums, minimum/maximum, array items, references to other definitions.
///
/// Objects are closed: a property the schema does not declare is a violation, because Firecracker
/// deserialises every body with `deny_unknown_fields` and answers it with a 400.
struct SchemaValidator {
    let definitions: [String: FirecrackerContract.Schema]

    func validate(_ value: JSONValue, against schema: FirecrackerContract.Schema, at location: String) -> [String] {
        switch schema {
        case .reference(let name):
            guard let target = definitions[name] else { return ["\(location): unresolvable reference \(name)"] }
            return validate(value, against: target, at: location)

        case .boolean:
            guard case .bool = value else { return ["\(location): expected boolean, got \(value)"] }
            return []

        case .string(let allowed):
            guard case .string(let text) = value else { return ["\(location): expected string, got \(value)"] }
            if let allowed, !allowed.contains(text) {
                return ["\(location): \(value) is not one of \(allowed)"]
            }
            return []

        case .integer(let minimum, let maximum):
            guard case .integer(let number) = value else { return ["\(location): expected integer, got \(value)"] }
            var errors: [String] = []
            if let minimum, number < minimum { errors.append("\(location): \(number) is below the minimum \(minimum)") }
            if let maximum, number > maximum { errors.append("\(location): \(number) is above the maximum \(maximum)") }
            return errors

        case .array(let itemSchema):
            guard case .array(let items) = value else { return ["\(location): expected array, got \(value)"] }
            return items.enumerated().flatMap { index, item in validate(item, against: itemSchema, at: "\(location)[\(index)]") }

        case .object(let required, let optional):
            guard case .object(let members) = value else { return ["\(location): expected object, got \(value)"] }
            var errors: [String] = []
            for name in required.keys.sorted() where members[name] == nil {
                errors.append("\(location): required property \(name) is missing")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = required[name] ?? optional[name] {
                    errors += validate(member, against: propertySchema, at: "\(location).\(name)")
                } else {
                    errors.append("\(location): property \(name) is not declared by the contract (Firecracker denies unknown fields)")
                }
            }
            return errors
        }
    }
}
