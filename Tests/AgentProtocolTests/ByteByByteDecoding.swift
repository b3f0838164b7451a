import AgentProtocol

/// Encodes `messages` and feeds the frames to one decoder a byte at a time, as a slow channel would:
/// what comes out must be what went in, whatever the frame boundaries.
func decodedOneByteAtATime(_ messages: [AgentMessage]) throws -> [AgentMessage] {
    var decoder = AgentFrameDecoder()
    var decoded: [AgentMessage] = []
    for message in messages {
        for byte in try AgentFrame.encode(message) {
            decoder.append(CollectionOfOne(byte))
            if let next = try decoder.next() { decoded.append(next) }
        }
    }
    return decoded
}
