import FoundationEssentials

/// Typed reads of one JSON object's members, with the errors a decoder would give.
struct WireJSONFields {
    let members: [(String, WireJSON.Value)]
    /// For errors: `run.limits`, `resume`, ...
    let path: String

    init(_ value: WireJSON.Value, path: String) throws(WireJSON.Failure) {
        guard case .object(let members) = value else { throw WireJSON.Failure(offset: 0, reason: "\(path) is not an object") }
        self.members = members
        self.path = path
    }

    func failure(_ key: String, _ reason: String) -> WireJSON.Failure {
        WireJSON.Failure(offset: 0, reason: "\(path).\(key) \(reason)")
    }

    /// The member, nil when it is absent or null (as `decodeIfPresent` reads it).
    func optional(_ key: String) -> WireJSON.Value? {
        guard let value = members.first(where: { $0.0 == key })?.1, value != .null else { return nil }
        return value
    }

    func required(_ key: String) throws(WireJSON.Failure) -> WireJSON.Value {
        guard let value = optional(key) else { throw failure(key, "is missing") }
        return value
    }

    func string(_ key: String) throws(WireJSON.Failure) -> String { try Self.string(try required(key)) { failure(key, $0) } }
    func optionalString(_ key: String) throws(WireJSON.Failure) -> String? {
        try optional(key).map { (value) throws(WireJSON.Failure) in try Self.string(value) { failure(key, $0) } }
    }

    func integer<T: FixedWidthInteger>(_ key: String, as type: T.Type = Int.self) throws(WireJSON.Failure) -> T {
        try Self.integer(try required(key), T.self) { failure(key, $0) }
    }
    func optionalInteger<T: FixedWidthInteger>(_ key: String, as type: T.Type = Int.self) throws(WireJSON.Failure) -> T? {
        try optional(key).map { (value) throws(WireJSON.Failure) in try Self.integer(value, T.self) { failure(key, $0) } }
    }

    func bool(_ key: String) throws(WireJSON.Failure) -> Bool {
        guard case .bool(let flag) = try required(key) else { throw failure(key, "is not a boolean") }
        return flag
    }
    func optionalBool(_ key: String) throws(WireJSON.Failure) -> Bool? {
        guard let value = optional(key) else { return nil }
        guard case .bool(let flag) = value else { throw failure(key, "is not a boolean") }
        return flag
    }

    /// `Data`, base64 in a string as Foundation writes it.
    func data(_ key: String) throws(WireJSON.Failure) -> Data {
        guard let data = try optionalData(key) else { throw failure(key, "is missing") }
        return data
    }
    func optionalData(_ key: String) throws(WireJSON.Failure) -> Data? {
        guard let text = try optionalString(key) else { return nil }
        guard let data = Data(base64Encoded: text) else { throw failure(key, "is not base64") }
        return data
    }

    func array(_ key: String) throws(WireJSON.Failure) -> [WireJSON.Value] {
        guard case .array(let elements) = try required(key) else { throw failure(key, "is not an array") }
        return elements
    }
    func optionalArray(_ key: String) throws(WireJSON.Failure) -> [WireJSON.Value]? {
        guard let value = optional(key) else { return nil }
        guard case .array(let elements) = value else { throw failure(key, "is not an array") }
        return elements
    }

    func strings(_ key: String) throws(WireJSON.Failure) -> [String]? {
        guard let elements = try optionalArray(key) else { return nil }
        var strings: [String] = []
        for element in elements { strings.append(try Self.string(element) { failure(key, $0) }) }
        return strings
    }

    func object(_ key: String) throws(WireJSON.Failure) -> WireJSONFields { try WireJSONFields(try required(key), path: "\(path).\(key)") }

    static func string(_ value: WireJSON.Value, _ failure: (String) -> WireJSON.Failure) throws(WireJSON.Failure) -> String {
        guard case .string(let text) = value else { throw failure("is not a string") }
        return text
    }

    static func integer<T: FixedWidthInteger>(_ value: WireJSON.Value, _ type: T.Type, _ failure: (String) -> WireJSON.Failure)
        throws(WireJSON.Failure) -> T
    {
        guard case .integer(let number) = value else { throw failure("is not an integer") }
        guard let exact = T(exactly: number) else { throw failure("is out of range") }
        return exact
    }
}

/// Builds one JSON object's members in order, leaving out absent optionals as Foundation's encoder does.
struct WireJSONObject {
    var members: [(String, WireJSON.Value)] = []

    mutating func add(_ key: String, _ value: WireJSON.Value) { members.append((key, value)) }
    mutating func add(_ key: String, _ text: String) { members.append((key, .string(text))) }
    mutating func add(_ key: String, _ flag: Bool) { members.append((key, .bool(flag))) }
    mutating func add<T: BinaryInteger>(_ key: String, _ number: T) { members.append((key, .integer(Int64(number)))) }
    mutating func add(_ key: String, _ data: Data) { members.append((key, .string(data.base64EncodedString()))) }
    mutating func addIfPresent(_ key: String, _ text: String?) { if let text { add(key, text) } }
    mutating func addIfPresent<T: BinaryInteger>(_ key: String, _ number: T?) { if let number { add(key, number) } }
    mutating func addIfPresent(_ key: String, _ data: Data?) { if let data { add(key, data) } }

    var value: WireJSON.Value { .object(members) }
}
