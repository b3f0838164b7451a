/// A small JSON reader and writer for the agent's side of the channel (``AgentPayloadCodec/compact``).
///
/// Why not Foundation's JSONDecoder and JSONEncoder, which the host uses: in a VM just restored from a
/// snapshot, QEMU's TCG has translated none of the guest's code, and the first use of Foundation's
/// Codable machinery (its scanner, its generic containers, the runtime's conformance lookups) cost the
/// agent ~70 ms of translation per VM, half of its whole resume (docs/snapshots.md, "The job inside
/// the guest"). This is a few hundred lines of concrete code. The wire format is unchanged: what it
/// writes Foundation reads, and what Foundation writes it reads (`WireJSONTests` checks both ways).
///
/// Only what the protocol uses: objects, arrays, strings, integers, booleans, null. Numbers with a
/// fraction or an exponent are refused (the protocol has none). Nesting is bounded.
public enum WireJSON {
    public indirect enum Value: Equatable, Sendable {
        case null
        case bool(Bool)
        case integer(Int64)
        case string(String)
        case array([Value])
        /// Members in their order in the text; a repeated key is refused when parsed.
        case object([(String, Value)])

        public static func == (lhs: Value, rhs: Value) -> Bool {
            switch (lhs, rhs) {
            case (.null, .null): true
            case (.bool(let a), .bool(let b)): a == b
            case (.integer(let a), .integer(let b)): a == b
            case (.string(let a), .string(let b)): a == b
            case (.array(let a), .array(let b)): a == b
            case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: false
            }
        }
    }

    /// Why a text is not what the protocol sends: the byte offset and what was wrong there.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var reason: String

        public var description: String { "invalid JSON at byte \(offset): \(reason)" }
    }

    /// Deeper nesting than any message of the protocol.
    public static let maximumDepth = 32
}
