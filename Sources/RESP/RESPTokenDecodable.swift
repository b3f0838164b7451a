import NIOCore

/// Why a reply could not be turned into the requested Swift type.
public struct RESPDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The reply has another RESP type (e.g. an array where a string was expected).
        public static let unexpectedType = Code("unexpectedType")
        /// The reply is null and the requested type is not optional.
        public static let unexpectedNull = Code("unexpectedNull")
        /// The reply has the right type but its content does not fit (e.g. a non-numeric string for Int).
        public static let invalidValue = Code("invalidValue")
        public var description: String { name }
    }

    public var code: Code
    public var token: RESPToken
    public var expected: String

    public init(code: Code, token: RESPToken, expected: String) {
        self.code = code
        self.token = token
        self.expected = expected
    }

    public var description: String { "cannot decode \(token.identifier) reply \(token) as \(expected) (\(code))" }
}

/// A Swift type a reply can be decoded into: `try reply.decode(as: String?.self)`.
public protocol RESPTokenDecodable {
    init(fromRESP token: RESPToken) throws(RESPDecodeError)
}

extension RESPToken {
    /// Decodes the reply into `type`; use an optional type when the reply may be null.
    @inlinable
    public func decode<T: RESPTokenDecodable>(as type: T.Type = T.self) throws(RESPDecodeError) -> T {
        try T(fromRESP: self)
    }
}

extension RESPToken: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) { self = token }
}

extension RESPValue: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) { self.init(token) }
}

extension RESPDecodeError {
    static func check<T>(_ value: T?, _ token: RESPToken, _ expected: String) throws(RESPDecodeError) -> T {
        if let value { return value }
        throw RESPDecodeError(code: token.isNull ? .unexpectedNull : .unexpectedType, token: token, expected: expected)
    }
}

extension String: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        if case .number(let n) = token.value { self = String(n); return }
        self = try RESPDecodeError.check(token.string, token, "String")
    }
}

extension ByteBuffer: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = try RESPDecodeError.check(token.bytes, token, "ByteBuffer")
    }
}

extension Int: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = try RESPDecodeError.check(token.int, token, "Int")
    }
}

extension Double: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = try RESPDecodeError.check(token.double, token, "Double")
    }
}

extension Bool: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = try RESPDecodeError.check(token.bool, token, "Bool")
    }
}

extension Optional: RESPTokenDecodable where Wrapped: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        self = token.isNull ? nil : try Wrapped(fromRESP: token)
    }
}

extension Array: RESPTokenDecodable where Element: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        let elements = try RESPDecodeError.check(token.array, token, "Array")
        self = []
        reserveCapacity(elements.count)
        for element in elements { append(try Element(fromRESP: element)) }
    }
}

extension Dictionary: RESPTokenDecodable where Key: RESPTokenDecodable, Value: RESPTokenDecodable {
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        let pairs = try RESPDecodeError.check(token.pairs, token, "Dictionary")
        self = [:]
        for pair in pairs { self[try Key(fromRESP: pair.key)] = try Value(fromRESP: pair.value) }
    }
}
