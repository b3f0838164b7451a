import NIOCore

extension RESPToken {
    /// True for `$-1`, `*-1` and `_`.
    public var isNull: Bool {
        switch identifier {
        case .null:
            return true
        case .bulkString, .bulkError, .verbatimString, .array, .set, .push:
            // Checked on every reply: only a negative length can be null, so skip the full parse otherwise.
            guard base.getInteger(at: base.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "-") else { return false }
            if case .null = value { return true }
            return false
        default:
            return false
        }
    }

    /// True for simple and bulk errors.
    public var isError: Bool {
        let id = identifier
        return id == .simpleError || id == .bulkError
    }

    /// The message of a simple or bulk error reply (e.g. `WRONGTYPE Operation against ...`).
    public var errorMessage: String? {
        switch value {
        case .simpleError(let b), .bulkError(let b): return String(buffer: b)
        default: return nil
        }
    }

    /// Text of a simple string, bulk string or verbatim string (without its format prefix); nil otherwise.
    public var string: String? {
        switch value {
        case .simpleString(let b), .bulkString(let b): return String(buffer: b)
        case .verbatimString(var b):
            b.moveReaderIndex(forwardBy: 4)
            return String(buffer: b)
        default: return nil
        }
    }

    /// Raw bytes of a simple, bulk or verbatim string.
    public var bytes: ByteBuffer? {
        switch value {
        case .simpleString(let b), .bulkString(let b): return b
        case .verbatimString(var b):
            b.moveReaderIndex(forwardBy: 4)
            return b
        default: return nil
        }
    }

    /// An integer reply, or a string holding a base-10 integer (Redis returns numbers as bulk strings in places).
    public var int: Int? {
        switch value {
        case .number(let n): return Int(exactly: n)
        case .simpleString(let b), .bulkString(let b), .bigNumber(let b): return Int(String(buffer: b))
        default: return nil
        }
    }

    /// A double reply, an integer, or a string holding a number (RESP2 sends scores as strings).
    public var double: Double? {
        switch value {
        case .double(let d): return d
        case .number(let n): return Double(n)
        case .simpleString(let b), .bulkString(let b):
            let text = String(buffer: b)
            switch text {
            case "inf", "+inf": return .infinity
            case "-inf": return -.infinity
            default: return Double(text)
            }
        default: return nil
        }
    }

    /// A RESP3 boolean, or the integer 0/1 RESP2 uses instead.
    public var bool: Bool? {
        switch value {
        case .boolean(let b): return b
        case .number(let n) where n == 0 || n == 1: return n == 1
        default: return nil
        }
    }

    /// Elements of an array, set or push reply.
    public var array: [RESPToken]? {
        switch value {
        case .array(let a), .set(let a), .push(let a): return Swift.Array(a)
        default: return nil
        }
    }

    /// Pairs of a RESP3 map, or of a flat RESP2 array of alternating keys and values.
    public var pairs: [(key: RESPToken, value: RESPToken)]? {
        switch value {
        case .map(let m): return Swift.Array(m)
        case .array(let a) where a.count % 2 == 0:
            var result: [(key: RESPToken, value: RESPToken)] = []
            result.reserveCapacity(a.count / 2)
            var iterator = a.makeIterator()
            while let key = iterator.next(), let value = iterator.next() { result.append((key, value)) }
            return result
        default: return nil
        }
    }
}
