/// How a program's output is held against a test case's expected output (the job's `compare` field).
///
/// Pure and dependency-free on purpose: the guest agent judges with it, and the host parses the job's
/// `compare` field and tests the same rules without a VM, so the two can never disagree.
public enum Comparison: Sendable, Equatable, Hashable {
    /// Byte for byte.
    case exact
    /// Trailing whitespace on each line and trailing blank lines ignored (what most judges call "default").
    case trimmed
    /// The whitespace-separated tokens must be equal; how much whitespace, and which, does not matter.
    case tokens
    /// Tokens, where two tokens that both read as finite numbers are equal within `epsilon`, absolute or
    /// relative to the larger magnitude; other tokens must be equal as text.
    case float(epsilon: Double)

    /// The mode a job gets when it names none.
    public static let `default` = Comparison.trimmed

    /// Reads the job's spelling (`exact`, `trimmed`, `tokens`, `float:1e-6`); nil for anything else.
    public init?(parsing text: String) {
        switch text {
        case "exact": self = .exact
        case "trimmed": self = .trimmed
        case "tokens": self = .tokens
        default:
            guard text.hasPrefix("float:"), let epsilon = Double(text.dropFirst("float:".count)),
                epsilon.isFinite, epsilon >= 0
            else { return nil }
            self = .float(epsilon: epsilon)
        }
    }

    /// The job's spelling of this mode; ``init(parsing:)`` reads it back.
    public var name: String {
        switch self {
        case .exact: "exact"
        case .trimmed: "trimmed"
        case .tokens: "tokens"
        case .float(let epsilon): "float:\(epsilon)"
        }
    }

    /// The spellings a refusal lists.
    public static let spellings = "exact, trimmed, tokens, float:<epsilon>"

    /// Whether `actual` passes for `expected` under this mode.
    public func accepts(expected: some Collection<UInt8>, actual: some Collection<UInt8>) -> Bool {
        switch self {
        case .exact:
            return expected.elementsEqual(actual)
        case .trimmed:
            return Self.trimmedLines(expected) == Self.trimmedLines(actual)
        case .tokens:
            return Self.tokens(expected) == Self.tokens(actual)
        case .float(let epsilon):
            let wanted = Self.tokens(expected)
            let got = Self.tokens(actual)
            guard wanted.count == got.count else { return false }
            return zip(wanted, got).allSatisfy { Self.tokenMatches($0, $1, epsilon: epsilon) }
        }
    }

    // MARK: Pieces (internal so tests can pin them down)

    /// Space, tab, newline, vertical tab, form feed, carriage return: C's isspace in the C locale.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    /// Lines without their trailing whitespace (so CRLF reads as LF), trailing blank lines dropped.
    static func trimmedLines(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        var lines = Array(bytes).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            Array(line[..<(line.lastIndex(where: { !isWhitespace($0) }).map { $0 + 1 } ?? line.startIndex)])
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }

    static func tokens(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        Array(bytes).split(whereSeparator: isWhitespace).map(Array.init)
    }

    static func tokenMatches(_ expected: [UInt8], _ actual: [UInt8], epsilon: Double) -> Bool {
        if expected == actual { return true }
        guard let wanted = number(expected), let got = number(actual) else { return false }
        let difference = abs(wanted - got)
        // The tolerance is a hair wider than epsilon: 0.1 + 0.2 against 0.3 within 1e-17 must not fail on rounding alone.
        let tolerance = epsilon * (1 + 1e-9)
        return difference <= tolerance || difference <= tolerance * max(abs(wanted), abs(got))
    }

    /// A finite decimal number, or nil: `nan`, `inf` and hexadecimal floats are compared as text.
    static func number(_ token: [UInt8]) -> Double? {
        guard token.allSatisfy({ (0x30...0x39).contains($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
            || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") })
        else { return nil }
        guard let value = Double(String(decoding: token, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }
}

extension Comparison: Codable {
    /// Encoded as its job spelling, so the agent protocol reads like the job.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = Comparison(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown comparison '\(text)'"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
