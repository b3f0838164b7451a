/// The one reader of a job payload's JSON: strict RFC 8259, with what an attacker could use to make two readers
/// disagree reported instead of silently resolved.
///
/// JSON readers differ where the RFC leaves room: Foundation's decoder keeps the first of two equal keys, Lua's
/// cjson the last, some readers accept lone surrogates or raw control characters. A platform, the worker and the
/// queue's scripts must never read one payload two ways (a duplicate `id` once let a job forge a failure onto
/// another job's id), so this reader:
/// - refuses invalid UTF-8, raw control characters in strings, lone surrogates in `\u` escapes, leading zeros,
///   trailing data — anything outside the grammar;
/// - records every key that appears twice in one object, at any depth (the first one is kept, so the caller can
///   still name the job when the duplicate is elsewhere, and decides what a duplicate means);
/// - recurses at most ``maximumDepth`` levels; a deeper value is skipped without recursion (so a payload nested
///   100 000 levels deep costs no stack) and recorded, which keeps the top-level `id` readable.
struct JobJSONReader {
    /// Containers nested deeper than this are not read (the deepest legitimate job field is `limits.*`, depth 2).
    static let maximumDepth = 64

    /// The payload's value and what made it unfit to run, by path (`limits.memory_mb`).
    struct Document {
        var value: JSONValue
        /// Keys that appeared more than once, in the order met: `id`, `limits.memory_mb`.
        var duplicateKeys: [String] = []
        /// The first value nested deeper than ``maximumDepth``, by the path of the field that holds it.
        var tooDeep: String?
    }

    /// Where the payload leaves the grammar.
    struct SyntaxError: Error, Equatable, CustomStringConvertible {
        var message: String
        var offset: Int
        var description: String { "\(message) at byte \(offset)" }
    }

    private let bytes: [UInt8]
    private var index = 0
    private var document = Document(value: .null)

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Reads one JSON text (surrounding whitespace allowed, nothing else).
    static func read(_ payload: [UInt8]) throws(SyntaxError) -> Document {
        guard String(validating: payload, as: UTF8.self) != nil else {
            throw SyntaxError(message: "not valid UTF-8", offset: Self.firstInvalidUTF8Offset(payload))
        }
        var reader = JobJSONReader(payload)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 1, path: "")
        reader.skipWhitespace()
        guard reader.index == payload.count else { throw reader.error("unexpected data after the JSON value") }
        reader.document.value = value
        return reader.document
    }

    // MARK: Values

    private mutating func readValue(depth: Int, path: String) throws(SyntaxError) -> JSONValue {
        guard let byte = peek() else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if depth > Self.maximumDepth {
                if document.tooDeep == nil { document.tooDeep = path.isEmpty ? "(payload)" : path }
                try skipContainer()
                return .null
            }
            return byte == UInt8(ascii: "{") ? try readObject(depth: depth, path: path) : try readArray(depth: depth, path: path)
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try readNumber()
        default:
            throw error("unexpected character '\(Self.printable(byte))'")
        }
    }

    private mutating func readObject(depth: Int, path: String) throws(SyntaxError) -> JSONValue {
        index += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try readString()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
            index += 1
            skipWhitespace()
            let memberPath = path.isEmpty ? key : "\(path).\(key)"
            let value = try readValue(depth: depth + 1, path: memberPath)
            if members[key] == nil {
                members[key] = value
            } else {
                document.duplicateKeys.append(memberPath)
            }
            skipWhitespace()
            switch next() {
            case UInt8(ascii: ","): skipWhitespace()
            case UInt8(ascii: "}"): return .object(members)
            default: index -= 1; throw error("expected ',' or '}' in an object")
            }
        }
    }

    private mutating func readArray(depth: Int, path: String) throws(SyntaxError) -> JSONValue {
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            // Elements share their array's path: a reason names the job's field, not an index inside it.
            elements.append(try readValue(depth: depth + 1, path: path))
            skipWhitespace()
            switch next() {
            case UInt8(ascii: ","): skipWhitespace()
            case UInt8(ascii: "]"): return .array(elements)
            default: index -= 1; throw error("expected ',' or ']' in an array")
            }
        }
    }

    /// Skips a container too deep to read, with an explicit stack instead of recursion. Brackets must match and
    /// strings are read as strings (a `]` inside one is text); the rest of the grammar is not checked, since the
    /// payload is refused for its depth anyway.
    private mutating func skipContainer() throws(SyntaxError) {
        var closers: [UInt8] = []
        repeat {
            guard let byte = next() else { throw error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): closers.append(UInt8(ascii: "}"))
            case UInt8(ascii: "["): closers.append(UInt8(ascii: "]"))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard closers.last == byte else { index -= 1; throw error("mismatched '\(Self.printable(byte))'") }
                closers.removeLast()
            case UInt8(ascii: "\""):
                index -= 1
                _ = try readString()
            default:
                break
            }
        } while !closers.isEmpty
    }

    private mutating func readString() throws(SyntaxError) -> String {
        index += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flushRun(_ reader: JobJSONReader, upTo end: Int, into scalars: inout String.UnicodeScalarView) {
            if end > runStart {
                // The whole payload was validated as UTF-8, and a run never splits a sequence: it ends at a quote or
                // a backslash, which are ASCII.
                scalars.append(contentsOf: String(decoding: reader.bytes[runStart..<end], as: UTF8.self).unicodeScalars)
            }
        }
        while true {
            guard let byte = peek() else { throw error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                flushRun(self, upTo: index, into: &scalars)
                index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                flushRun(self, upTo: index, into: &scalars)
                index += 1
                scalars.append(try readEscape())
                runStart = index
            case 0..<0x20:
                throw error("control character U+00\(Self.hex(byte)) must be escaped in a string")
            default:
                index += 1
            }
        }
    }

    private mutating func readEscape() throws(SyntaxError) -> Unicode.Scalar {
        let start = index - 1  // the backslash: where a bad surrogate pair is reported
        guard let byte = next() else { throw error("unterminated escape") }
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try readHexUnit()
            switch unit {
            case 0xD800...0xDBFF:
                guard next() == UInt8(ascii: "\\"), next() == UInt8(ascii: "u") else {
                    throw SyntaxError(message: "lone high surrogate \\u\(String(unit, radix: 16))", offset: start)
                }
                let low = try readHexUnit()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw SyntaxError(message: "high surrogate not followed by a low one", offset: start)
                }
                let value = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                return Unicode.Scalar(value)!
            case 0xDC00...0xDFFF:
                throw SyntaxError(message: "lone low surrogate \\u\(String(unit, radix: 16))", offset: start)
            default:
                return Unicode.Scalar(UInt32(unit))!
            }
        default:
            index -= 1
            throw error("invalid escape '\\\(Self.printable(byte))'")
        }
    }

    private mutating func readHexUnit() throws(SyntaxError) -> UInt16 {
        var unit: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = next() else { throw error("unterminated \\u escape") }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: index -= 1; throw error("invalid hex digit in a \\u escape")
            }
            unit = unit << 4 | UInt16(digit)
        }
        return unit
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`. An integer that fits `Int` stays exact; anything else is a
    /// `Double` (possibly infinite: the job's fields then refuse it as not a positive integer).
    private mutating func readNumber() throws(SyntaxError) -> JSONValue {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), Self.isDigit(first) else { throw error("expected a digit") }
        index += 1
        if first == UInt8(ascii: "0"), let after = peek(), Self.isDigit(after) { throw error("leading zero in a number") }
        skipDigits()
        var integral = true
        if peek() == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard let digit = peek(), Self.isDigit(digit) else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            integral = false
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek(), Self.isDigit(digit) else { throw error("expected a digit in an exponent") }
            skipDigits()
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let exact = Int(text) { return .int(exact) }
        return .double(Double(text) ?? .infinity)
    }

    // MARK: Bytes

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func next() -> UInt8? {
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func skipDigits() {
        while let byte = peek(), Self.isDigit(byte) { index += 1 }
    }

    private mutating func expectLiteral(_ literal: String) throws(SyntaxError) {
        let expected = literal.utf8
        guard bytes.count - index >= expected.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
            throw error("invalid literal (expected \(literal))")
        }
        index += expected.count
    }

    private func error(_ message: String) -> SyntaxError { SyntaxError(message: message, offset: index) }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static func hex(_ byte: UInt8) -> String {
        let text = String(byte, radix: 16, uppercase: true)
        return text.count == 1 ? "0" + text : text
    }

    /// A byte as it may appear in a reason: printable ASCII as itself, anything else as `\xNN`.
    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? String(UnicodeScalar(byte)) : "\\x\(hex(byte))"
    }

    private static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): offset += UTF8.width(scalar)
            case .emptyInput, .error: return offset
            }
        }
    }
}
