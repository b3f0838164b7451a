import NIOCore
import RESP

// Reading the few reply shapes the queue's commands and scripts return.
extension RESPValue {
    var isNull: Bool {
        switch self {
        case .null, .nullBulkString, .nullArray: true
        default: false
        }
    }

    func integer() throws -> Int {
        switch self {
        case .integer(let value): return Int(value)
        default: throw JobQueueError(.unexpectedReply, "expected an integer, Redis replied \(self)")
        }
    }

    func bytes() throws -> [UInt8] {
        switch self {
        case .bulkString(let buffer), .verbatimString(_, let buffer): return Array(buffer.readableBytesView)
        case .simpleString(let string): return Array(string.utf8)
        default: throw JobQueueError(.unexpectedReply, "expected a string, Redis replied \(self)")
        }
    }

    func optionalBytes() throws -> [UInt8]? {
        isNull ? nil : try bytes()
    }

    func string() throws -> String {
        String(decoding: try bytes(), as: UTF8.self)
    }

    func elements() throws -> [RESPValue] {
        switch self {
        case .array(let values), .set(let values): return values
        default:
            if isNull { return [] }
            throw JobQueueError(.unexpectedReply, "expected an array, Redis replied \(self)")
        }
    }

    func strings() throws -> [String] {
        try elements().map { try $0.string() }
    }
}
