/// Validates one RESP value in raw bytes and finds where it ends, without copying or allocating.
///
/// `scan` returns the offset just past the value, `nil` when more bytes are needed,
/// or throws as soon as the bytes seen so far cannot be the start of a valid value
/// (so hostile input fails fast instead of being buffered until a limit is hit).
struct RESPScanner {
    let bytes: UnsafeRawBufferPointer
    let limits: RESPDecodingLimits

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// Where a partial scan stopped, so the next attempt on the same (grown) bytes resumes there
    /// instead of rescanning a large reply from its start on every read.
    struct Progress {
        /// Offset of the next element to scan.
        var offset = 0
        /// Elements still expected by each open aggregate, outermost first.
        var remaining: [Int] = []

        mutating func reset() {
            offset = 0
            remaining.removeAll(keepingCapacity: true)
        }
    }

    /// One element: a complete scalar, or the header of an aggregate whose elements follow.
    enum Element {
        case scalar(end: Int)
        case aggregate(elements: Int, first: Int)
    }

    /// Scans one whole value from `progress.offset`, resuming a previous partial scan.
    /// Returns the end offset of the value (and leaves `progress` dirty: reset it before reuse),
    /// or nil with `progress` pointing at the first element not yet complete.
    func scan(_ progress: inout Progress) throws(RESPParsingError) -> Int? {
        while true {
            guard let element = try element(at: progress.offset) else { return nil }
            switch element {
            case .aggregate(let elements, let first):
                guard progress.remaining.count < limits.maxDepth else {
                    throw RESPParsingError(code: .nestingTooDeep, offset: progress.offset, message: "nesting deeper than \(limits.maxDepth)")
                }
                progress.offset = first
                if elements > 0 {
                    progress.remaining.append(elements)
                    continue
                }
            case .scalar(let end):
                progress.offset = end
            }
            // An element is complete: close every aggregate it completes.
            while true {
                guard !progress.remaining.isEmpty else { return progress.offset }
                progress.remaining[progress.remaining.count - 1] -= 1
                guard progress.remaining[progress.remaining.count - 1] == 0 else { break }
                progress.remaining.removeLast()
            }
        }
    }

    /// Scans one value from `offset` without saved progress.
    func scan(at offset: Int) throws(RESPParsingError) -> Int? {
        var progress = Progress(offset: offset)
        return try scan(&progress)
    }

    private func element(at offset: Int) throws(RESPParsingError) -> Element? {
        guard offset < bytes.count else { return nil }
        guard let type = RESPTypeIdentifier(rawValue: bytes[offset]) else {
            throw RESPParsingError(code: .invalidLeadingByte, offset: offset, message: "unexpected type byte 0x\(String(bytes[offset], radix: 16))")
        }
        let body = offset + 1
        switch type {
        case .simpleString, .simpleError:
            return try line(at: body).map { .scalar(end: $0.end) }
        case .integer:
            guard let (start, stop, end) = try line(at: body) else { return nil }
            guard Self.parseInteger(bytes, start, stop) != nil else {
                throw RESPParsingError(code: .invalidInteger, offset: start, message: "not a signed 64-bit integer")
            }
            return .scalar(end: end)
        case .null:
            guard let (start, stop, end) = try line(at: body) else { return nil }
            guard start == stop else { throw RESPParsingError(code: .invalidNull, offset: start, message: "null with a payload") }
            return .scalar(end: end)
        case .boolean:
            guard let (start, stop, end) = try line(at: body) else { return nil }
            guard stop - start == 1, bytes[start] == UInt8(ascii: "t") || bytes[start] == UInt8(ascii: "f") else {
                throw RESPParsingError(code: .invalidBoolean, offset: start, message: "boolean is not t or f")
            }
            return .scalar(end: end)
        case .double:
            guard let (start, stop, end) = try line(at: body) else { return nil }
            guard Self.parseDouble(bytes, start, stop) != nil else {
                throw RESPParsingError(code: .invalidDouble, offset: start, message: "not a double")
            }
            return .scalar(end: end)
        case .bigNumber:
            guard let (start, stop, end) = try line(at: body) else { return nil }
            guard Self.isBigNumber(bytes, start, stop) else {
                throw RESPParsingError(code: .invalidBigNumber, offset: start, message: "not a decimal big number")
            }
            return .scalar(end: end)
        case .bulkString, .bulkError, .verbatimString:
            guard let (length, payload) = try length(at: body, allowNull: type == .bulkString) else { return nil }
            if length < 0 { return .scalar(end: payload) }
            guard length <= limits.maxBulkLength else {
                throw RESPParsingError(code: .bulkStringTooLarge, offset: body, message: "bulk length \(length) exceeds \(limits.maxBulkLength)")
            }
            if type == .verbatimString {
                if length < 4 {
                    throw RESPParsingError(code: .invalidVerbatimString, offset: payload, message: "verbatim string shorter than its format prefix")
                }
                // The format is three printable ASCII bytes (`txt`, `mkd`) and a colon.
                for i in payload..<min(payload + 4, bytes.count) {
                    let valid = i == payload + 3 ? bytes[i] == UInt8(ascii: ":") : (0x21...0x7E).contains(bytes[i]) && bytes[i] != UInt8(ascii: ":")
                    if !valid {
                        throw RESPParsingError(code: .invalidVerbatimString, offset: payload, message: "verbatim string without a format prefix")
                    }
                }
            }
            let stop = payload + length
            guard stop + 2 <= bytes.count else {
                // Fail early on a wrong terminator we can already see.
                if stop < bytes.count, bytes[stop] != Self.cr {
                    throw RESPParsingError(code: .invalidLineTerminator, offset: stop, message: "bulk payload not followed by CRLF")
                }
                return nil
            }
            guard bytes[stop] == Self.cr, bytes[stop + 1] == Self.lf else {
                throw RESPParsingError(code: .invalidLineTerminator, offset: stop, message: "bulk payload not followed by CRLF")
            }
            return .scalar(end: stop + 2)
        case .array, .set, .push, .map, .attribute:
            guard let (count, first) = try length(at: body, allowNull: type == .array) else { return nil }
            if count < 0 { return .scalar(end: first) }
            let elements = (type == .map || type == .attribute) ? count.multipliedReportingOverflow(by: 2) : (partialValue: count, overflow: false)
            guard !elements.overflow, elements.partialValue <= limits.maxAggregateCount else {
                throw RESPParsingError(code: .tooManyElements, offset: body, message: "\(count) elements exceed \(limits.maxAggregateCount)")
            }
            // An attribute decorates the value that follows it; both form one reply.
            return .aggregate(elements: elements.partialValue + (type == .attribute ? 1 : 0), first: first)
        }
    }

    /// A CRLF-terminated line starting at `start`: (payload start, payload end, offset after CRLF).
    private func line(at start: Int) throws(RESPParsingError) -> (Int, Int, end: Int)? {
        var i = start
        let limit = limits.maxLineLength >= bytes.count - start ? bytes.count : start + limits.maxLineLength + 1
        while i < limit {
            let byte = bytes[i]
            if byte == Self.cr {
                guard i + 1 < bytes.count else { return nil }
                guard bytes[i + 1] == Self.lf else {
                    throw RESPParsingError(code: .invalidLineTerminator, offset: i, message: "CR not followed by LF")
                }
                return (start, i, i + 2)
            }
            if byte == Self.lf {
                throw RESPParsingError(code: .invalidLineTerminator, offset: i, message: "bare LF in a line")
            }
            i += 1
        }
        if i - start > limits.maxLineLength {
            throw RESPParsingError(code: .lineTooLong, offset: start, message: "line longer than \(limits.maxLineLength) bytes")
        }
        return nil
    }

    /// A length/count line: (value, offset after CRLF). `-1` is accepted only where RESP2 has a null form.
    private func length(at start: Int, allowNull: Bool) throws(RESPParsingError) -> (Int, Int)? {
        if start < bytes.count, bytes[start] == UInt8(ascii: "?") {
            throw RESPParsingError(code: .unsupportedStreamedType, offset: start, message: "streamed RESP3 types are not supported")
        }
        // A length never needs more than 20 characters; longer lines are garbage, reject early.
        var i = start
        while i < bytes.count, bytes[i] != Self.cr {
            if i - start > 20 || bytes[i] == Self.lf {
                throw RESPParsingError(code: .invalidLength, offset: start, message: "length is not a number")
            }
            i += 1
        }
        guard i + 1 < bytes.count else { return nil }
        guard bytes[i + 1] == Self.lf else {
            throw RESPParsingError(code: .invalidLineTerminator, offset: i, message: "CR not followed by LF")
        }
        guard bytes[start] != UInt8(ascii: "+"), let value = Self.parseInteger(bytes, start, i),
              value >= -1, value != -1 || allowNull, let length = Int(exactly: value)
        else {
            throw RESPParsingError(code: .invalidLength, offset: start, message: "invalid length or count")
        }
        return (length, i + 2)
    }

    /// Strict base-10 Int64: optional sign, 1...19 digits, overflow-checked.
    static func parseInteger(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) -> Int64? {
        var i = start
        var negative = false
        if i < stop, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            negative = bytes[i] == UInt8(ascii: "-")
            i += 1
        }
        guard i < stop, stop - i <= 19 else { return nil }
        var value: Int64 = 0
        while i < stop {
            let digit = bytes[i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(digit)) : m.addingReportingOverflow(Int64(digit))
            guard !o1, !o2 else { return nil }
            value = s
            i += 1
        }
        return value
    }

    /// RESP3 doubles: decimal/exponent notation, `inf`, `-inf`, `nan` (and `+inf`, `-nan` which some servers send).
    static func parseDouble(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) -> Double? {
        guard stop > start, stop - start <= 64 else { return nil }
        var sawDigit = false
        for i in start..<stop {
            switch bytes[i] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default:
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self).lowercased()
                switch text {
                case "inf", "+inf": return .infinity
                case "-inf": return -.infinity
                case "nan", "-nan", "+nan": return .nan
                default: return nil
                }
            }
        }
        guard sawDigit else { return nil }
        return Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<stop]), as: UTF8.self))
    }

    static func isBigNumber(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ stop: Int) -> Bool {
        var i = start
        if i < stop, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
        guard i < stop else { return false }
        while i < stop {
            guard bytes[i] &- UInt8(ascii: "0") < 10 else { return false }
            i += 1
        }
        return true
    }
}
