import AgentProtocol

/// An ``AgentFrameDecoder`` that survives bad input: after a frame it cannot read it drops what it
/// has buffered and skips bytes until the next "CBA" followed by a byte below 0x20 (a version). A JSON
/// payload never holds a raw control byte, so the skip cannot stop inside the rest of an oversized or
/// garbled frame, and a frame of another version is still seen (and answered with unsupported_version).
struct FrameReader {
    private let maximumPayload: Int
    private var decoder: AgentFrameDecoder
    private var resynchronising = false
    private var skipped: [UInt8] = []

    init(maximumPayload: Int) {
        self.maximumPayload = maximumPayload
        decoder = AgentFrameDecoder(maximumPayload: maximumPayload, codec: .compact)
    }

    /// Feeds received bytes; returns the messages and frame errors they completed, in order.
    mutating func feed(_ bytes: ArraySlice<UInt8>) -> [Result<AgentMessage, AgentFrameError>] {
        if resynchronising {
            skipped.append(contentsOf: bytes)
            guard let start = FrameReader.findHeader(in: skipped) else {
                skipped = Array(skipped.suffix(AgentFrame.magic.count))
                return []
            }
            decoder = AgentFrameDecoder(maximumPayload: maximumPayload, codec: .compact)
            decoder.append(skipped[start...])
            skipped = []
            resynchronising = false
        } else {
            decoder.append(bytes)
        }
        var results: [Result<AgentMessage, AgentFrameError>] = []
        while true {
            do {
                guard let message = try decoder.next() else { return results }
                results.append(.success(message))
            } catch {
                results.append(.failure(error))
                // The decoder has already stepped over a frame whose JSON was bad; for a bad header it has not.
                if error.code != .invalidPayload {
                    decoder = AgentFrameDecoder(maximumPayload: maximumPayload, codec: .compact)
                    resynchronising = true
                    return results
                }
            }
        }
    }

    /// Forgets everything buffered: the peer reconnected.
    mutating func reset() {
        decoder = AgentFrameDecoder(maximumPayload: maximumPayload, codec: .compact)
        resynchronising = false
        skipped = []
    }

    private static func findHeader(in bytes: [UInt8]) -> Int? {
        let magic = AgentFrame.magic
        guard bytes.count > magic.count else { return nil }
        for index in 0..<(bytes.count - magic.count)
        where bytes[index + magic.count] < 0x20 && bytes[index..<(index + magic.count)].elementsEqual(magic) {
            return index
        }
        return nil
    }
}
