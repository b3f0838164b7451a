import NIOCore
import RESP

/// One entry of a streamed job's output stream, `<outputKeyPrefix><id>` (docs/wire-contract.md,
/// "Streamed output"): the fields `stream`, `seq` and `data` of one `XADD`.
public struct OutputStreamEntry: Sendable, Equatable {
    /// The `stream` field.
    public enum Kind: String, Sendable, Equatable {
        /// Bytes the program wrote to standard output, in order.
        case stdout
        /// Bytes the program wrote to standard error, in order.
        case stderr
        /// A sentence for a person about the stream itself, e.g. that output was dropped on the way (the
        /// final status still has all of it), or that this job's output is not streamed.
        case notice
        /// The last entry: `data` is the job's terminal status, `done` or `failed`.
        case end
    }

    public var kind: Kind
    /// The `seq` field: 0 for a job's first entry, then one more for each.
    public var sequence: Int
    /// The `data` field: raw bytes (not necessarily UTF-8: a chunk may end inside a character).
    public var data: [UInt8]

    public init(kind: Kind, sequence: Int, data: [UInt8]) {
        self.kind = kind
        self.sequence = sequence
        self.data = data
    }

    /// An entry read back from its field-value pairs; nil when one of the three fields is missing or wrong.
    public init?(fields: [(key: RESPToken, value: RESPToken)]) {
        var values: [String: RESPToken] = [:]
        for (key, value) in fields { if let name = key.string { values[name] = value } }
        guard let kind = values["stream"]?.string.flatMap(Kind.init(rawValue:)),
            let sequence = values["seq"]?.string.flatMap({ Int($0) }),
            let data = values["data"]?.bytes
        else { return nil }
        self.init(kind: kind, sequence: sequence, data: Array(data.readableBytesView))
    }

    /// The entries of an `XREAD … STREAMS <key> <id>` reply for one key, with their stream ids (what the
    /// next `XREAD` continues after). An empty array for a nil reply (the BLOCK timed out); entries that are
    /// not the worker's are skipped.
    public static func entries(fromXREAD reply: RESPToken) -> [(id: String, entry: OutputStreamEntry)] {
        guard !reply.isNull else { return [] }
        // RESP3 answers a map {key: entries}, RESP2 an array of [key, entries] pairs.
        let perKey: [RESPToken]
        if case .map = reply.value {
            perKey = (reply.pairs ?? []).map(\.value)
        } else {
            perKey = (reply.array ?? []).compactMap { $0.array?.last }
        }
        var result: [(id: String, entry: OutputStreamEntry)] = []
        for entries in perKey {
            for item in entries.array ?? [] {
                guard let parts = item.array, parts.count == 2, let id = parts[0].string,
                    let fields = parts[1].pairs, let entry = OutputStreamEntry(fields: fields)
                else { continue }
                result.append((id, entry))
            }
        }
        return result
    }
}
