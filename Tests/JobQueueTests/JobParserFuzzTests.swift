import Foundation
import Testing

@testable import JobQueue

/// Hostile payloads, generated and mutated from a fixed seed (so a failure reproduces): duplicate keys, deep
/// nesting, huge numbers, surrogates, control characters, every field's wrong type, byte flips and truncations.
struct PayloadGenerator {
    private var state: UInt64
    private var counter = 0

    init(seed: UInt64) { state = seed }

    /// SplitMix64: small, fast, and the same sequence on every machine.
    private mutating func random() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func below(_ bound: Int) -> Int { Int(random() % UInt64(bound)) }
    private mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    private static let fields = ["id", "command", "code", "language", "variant", "stdin", "timeout_ms", "network", "limits"]
    private static let limitFields = ["wall_time_ms", "memory_mb", "memory_bytes", "processes", "output_bytes"]

    private mutating func hostileString() -> String {
        pick([
            #""plain""#, #""""#, #""\u0000""#, #""\ud800""#, #""\udfff\ud800""#, #""\ud83d\ude00""#, "\"\u{85}\"",
            #""a\nb""#, #""\u00e9\u2028""#, "\"\(String(repeating: "x", count: below(600)))\"", #""\"""#, #""\\""#,
            "\"é漢\"", #""python""#, #""c++""#, #""CoBoL""#, #""uname -a""#,
        ])
    }

    private mutating func hostileValue(depth: Int = 0) -> String {
        switch below(depth > 2 ? 9 : 12) {
        case 0: return hostileString()
        case 1: return pick(["0", "-1", "1", "5000", "5000.0", "1.5", "1e400", "-0", "99999999999999999999999", "9007199254740993", "1E2"])
        case 2: return pick(["true", "false", "null"])
        case 3: return "[]"
        case 4: return "{}"
        case 5, 6, 7, 8: return hostileString()
        case 9: return "[\(hostileValue(depth: depth + 1)),\(hostileValue(depth: depth + 1))]"
        case 10: return object(depth: depth + 1, keys: Self.limitFields)
        default:
            let nesting = pick([10, 63, 64, 65, 200, 5000])
            return String(repeating: "[", count: nesting) + String(repeating: "]", count: nesting)
        }
    }

    private mutating func object(depth: Int, keys: [String]) -> String {
        var members: [String] = []
        for _ in 0..<below(5) {
            let key = pick(keys)
            members.append("\"\(key)\":\(hostileValue(depth: depth))")
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// A plausible job with a fresh id, then one or two of: wrong types, duplicate keys, deep nesting, mutations.
    mutating func next() -> [UInt8] {
        counter += 1
        var members = ["\"id\":\"fuzz-\(counter)\"", pick(["\"command\":\"true\"", "\"language\":\"python\",\"code\":\"print(1)\""])]
        for _ in 0..<below(4) {
            members.append("\"\(pick(Self.fields))\":\(hostileValue())")
        }
        if below(4) == 0 {
            // A duplicate key, sometimes the id itself, before or after its twin.
            let key = below(2) == 0 ? "id" : pick(Self.fields)
            let duplicate = "\"\(key)\":\(below(2) == 0 ? "\"victim-\(below(5))\"" : hostileValue())"
            members.insert(duplicate, at: below(members.count + 1))
        }
        if below(8) == 0 {
            members.insert("\"limits\":\(object(depth: 1, keys: Self.limitFields + Self.limitFields.map { $0 }))", at: below(members.count + 1))
        }
        var bytes = Array(("{" + members.joined(separator: ",") + "}").utf8)
        switch below(10) {
        case 0: bytes = mutate(bytes)
        case 1: bytes = Array(bytes.prefix(below(bytes.count + 1)))
        case 2: bytes = (0..<below(64)).map { _ in UInt8(truncatingIfNeeded: random()) }
        case 3:
            // Mostly shallow enough to be quick; now and then the 100 000 levels of issue 11.
            let nesting = below(50) == 0 ? 100_000 : pick([65, 300, 1000])
            bytes = Array("{\"id\":\"fuzz-\(counter)\",\"stdin\":".utf8) + Array(repeating: UInt8(ascii: "["), count: nesting)
                + Array(repeating: UInt8(ascii: "]"), count: nesting) + Array("}".utf8)
        default: break
        }
        return bytes
    }

    private mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<1 + below(4) where !bytes.isEmpty {
            let index = below(bytes.count)
            switch below(4) {
            case 0: bytes[index] ^= UInt8(1 << below(8))
            case 1: bytes.insert(pick(Array("{}[]\",:\\\u{0}\u{1F}".utf8) + [0xC3, 0xFF, 0xED]), at: index)
            case 2: bytes.remove(at: index)
            default: bytes[index] = pick(Array("\"{}".utf8))
            }
        }
        return bytes
    }
}

@Suite("Job parser fuzzing")
struct JobParserFuzzTests {
    /// 100 000 hostile payloads: never a crash, always a job or an `invalid job:` reason, and whenever an id is read
    /// a second, independent reader (Foundation's) that accepts the payload reads the same id — so no payload this
    /// parser accepts can mean another job to another reader.
    @Test func hundredThousandHostilePayloads() throws {
        let parser = JobParser(maximumPayloadBytes: 1 << 20)
        var generator = PayloadGenerator(seed: 2026)
        var jobs = 0
        var codes: [String: Int] = [:]
        var crossChecked = 0
        let count = 100_000
        for _ in 0..<count {
            let payload = generator.next()
            let id: String?
            switch parser.parse(payload) {
            case .success(let job):
                jobs += 1
                id = job.id
            case .failure(let invalid):
                codes[invalid.code.rawValue, default: 0] += 1
                #expect(invalid.reason.hasPrefix("invalid job: "), "\(invalid.reason)")
                // Each invalid byte of the kept prefix becomes U+FFFD (3 bytes).
                #expect(invalid.rawPrefix.utf8.count <= 3 * JobParser.rawPrefixBytes)
                // Foundation's reader is not asked about payloads nested past our limit: it may recurse on them.
                id = invalid.code == .nestingTooDeep ? nil : invalid.id
            }
            guard let id else { continue }
            #expect(!id.isEmpty && id.utf8.count <= JobParser.maximumIDBytes)
            if let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] {
                crossChecked += 1
                #expect(object["id"] as? String == id, "\(String(decoding: payload, as: UTF8.self).prefix(300))")
            }
        }
        let summary = codes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("fuzz: \(count) payloads: \(jobs) jobs, \(count - jobs) refused (\(summary)); \(crossChecked) ids cross-checked")
        #expect(jobs > 1000)
        #expect(codes["duplicate_key", default: 0] > 1000)
        #expect(codes["nesting_too_deep", default: 0] > 1000)
        #expect(codes["not_json", default: 0] > 1000)
    }
}
