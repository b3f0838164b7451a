import NIOCore
import RESP
import Testing

/// Feeds random and mutated frames to the decoder: it must return a token, ask for more data, or
/// throw a `RESPParsingError`, never crash, hang or return garbage.
@Suite struct RESPFuzzTests {
    /// SplitMix64: deterministic, so a failure reproduces from the printed seed.
    struct SeededRNG: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet: [UInt8] = Array("+-:$*_#,(!=%~|>\r\n0123456789-?.tfinax ".utf8)
    static let limits = RESPDecodingLimits(maxDepth: 16, maxBulkLength: 4096, maxAggregateCount: 1024, maxLineLength: 1024)

    @Test func hundredThousandRandomAndMutatedFrames() throws {
        var rng = SeededRNG(state: 0xC0DE_BE4C)
        let seeds = RESPSamples.values.map { $0.encoded }
        var outcomes = (decoded: 0, incomplete: 0, rejected: 0)
        let started = ContinuousClock.now
        for iteration in 0..<120_000 {
            var frame: [UInt8]
            switch iteration % 3 {
            case 0:
                // Pure noise from a RESP-heavy alphabet.
                frame = (0..<Int.random(in: 1...48, using: &rng)).map { _ in Self.alphabet.randomElement(using: &rng)! }
            case 1:
                // A valid value with a few bytes flipped, inserted or removed.
                frame = Array(seeds.randomElement(using: &rng)!.readableBytesView)
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let position = Int.random(in: 0..<max(frame.count, 1), using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0 where !frame.isEmpty: frame[position] = Self.alphabet.randomElement(using: &rng)!
                    case 1: frame.insert(UInt8.random(in: 0...255, using: &rng), at: min(position, frame.count))
                    default: if !frame.isEmpty { frame.remove(at: position) }
                    }
                }
            default:
                // Several valid values back to back, truncated at a random point.
                frame = []
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    frame += Array(seeds.randomElement(using: &rng)!.readableBytesView)
                }
                frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &rng)))
            }
            try check(frame, &outcomes, iteration: iteration)
        }
        let elapsed = ContinuousClock.now - started
        print("fuzz: \(outcomes.decoded) decoded, \(outcomes.incomplete) incomplete, \(outcomes.rejected) rejected in \(elapsed)")
        #expect(outcomes.decoded > 1000 && outcomes.incomplete > 1000 && outcomes.rejected > 1000, "every path was exercised")
    }

    /// A stream of valid values cut at random points decodes to the same values through a channel.
    @Test func randomChunkingThroughChannel() throws {
        var rng = SeededRNG(state: 42)
        for _ in 0..<500 {
            let values = (0..<Int.random(in: 1...12, using: &rng)).map { _ in RESPSamples.values.randomElement(using: &rng)! }
            var stream = ByteBuffer()
            for value in values { value.encode(into: &stream) }
            var chunks: [ByteBuffer] = []
            while stream.readableBytes > 0 {
                chunks.append(stream.readSlice(length: Int.random(in: 1...min(stream.readableBytes, 40), using: &rng))!)
            }
            let decoded = try RESPSamples.decodeThroughChannel(chunks)
            #expect(decoded.map { RESPValue($0) } == values)
        }
    }

    private func check(_ frame: [UInt8], _ outcomes: inout (decoded: Int, incomplete: Int, rejected: Int), iteration: Int) throws {
        var buffer = ByteBuffer(bytes: frame)
        var consumed = 0
        do {
            while buffer.readableBytes > 0 {
                let before = buffer.readableBytes
                guard let token = try RESPToken(consuming: &buffer, limits: Self.limits) else {
                    #expect(buffer.readableBytes == before, "incomplete input must not be consumed (iteration \(iteration))")
                    outcomes.incomplete += 1
                    return
                }
                consumed += before - buffer.readableBytes
                outcomes.decoded += 1
                // A decoded token must be fully readable and re-encode to something that decodes again.
                let value = RESPValue(token)
                var reencoded = value.encoded
                let again = try #require(try RESPToken(consuming: &reencoded), "re-encoded value decodes (iteration \(iteration))")
                #expect(reencoded.readableBytes == 0)
                _ = again.description
            }
        } catch let error as RESPParsingError {
            #expect(error.offset >= 0 && error.offset <= frame.count - consumed, "\(error) in \(String(decoding: frame.dropFirst(consumed), as: UTF8.self).debugDescription)")
            outcomes.rejected += 1
        }
    }
}
