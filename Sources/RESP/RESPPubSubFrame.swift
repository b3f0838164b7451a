import NIOCore

/// One frame a subscribed connection receives: a RESP2 array (`*3 message <channel> <payload>`) or the
/// same elements as a RESP3 push (`>3 ...`). Both protocols carry pub/sub this way, so the subscriber
/// reads them with one parser and does not care which protocol its handshake negotiated.
public enum RESPPubSubFrame: Sendable, Hashable {
    /// A message published on a channel the connection subscribed to.
    case message(channel: String, payload: ByteBuffer)
    /// A message published on a channel matching a subscribed pattern.
    case patternMessage(pattern: String, channel: String, payload: ByteBuffer)
    /// The confirmation of `SUBSCRIBE`, `PSUBSCRIBE` or `SSUBSCRIBE` (`kind` is `subscribe`, ...) for one
    /// channel or pattern, with how many subscriptions the connection now has.
    case subscribed(kind: String, channel: String, count: Int)
    /// The confirmation of an unsubscribe; `channel` is nil when the connection had no subscription left.
    case unsubscribed(kind: String, channel: String?, count: Int)
    /// A `PING`'s answer while subscribed (RESP2: `*2 pong <argument>`; RESP3 answers `+PONG`).
    case pong(ByteBuffer)
}

extension RESPPubSubFrame: RESPTokenDecodable {
    /// Reads a frame; anything else (another type, an unknown kind, a wrong element count or type) is a
    /// ``RESPDecodeError``, which a subscriber skips: a server newer than this parser may send kinds we do not know.
    public init(fromRESP token: RESPToken) throws(RESPDecodeError) {
        let elements: [RESPToken]
        switch token.value {
        case .array(let array), .push(let array): elements = Array(array)
        case .simpleString(let text) where String(buffer: text).uppercased() == "PONG":
            self = .pong(ByteBuffer())
            return
        default: throw RESPDecodeError(code: .unexpectedType, token: token, expected: "pub/sub array or push")
        }
        func fail() -> RESPDecodeError {
            RESPDecodeError(code: .invalidValue, token: token, expected: "pub/sub frame (message, pmessage, subscribe, ...)")
        }
        guard let kind = elements.first?.string?.lowercased() else { throw fail() }
        switch (kind, elements.count) {
        case ("message", 3), ("smessage", 3):
            guard let channel = elements[1].string, let payload = elements[2].bytes else { throw fail() }
            self = .message(channel: channel, payload: payload)
        case ("pmessage", 4):
            guard let pattern = elements[1].string, let channel = elements[2].string, let payload = elements[3].bytes else {
                throw fail()
            }
            self = .patternMessage(pattern: pattern, channel: channel, payload: payload)
        case ("subscribe", 3), ("psubscribe", 3), ("ssubscribe", 3):
            guard let channel = elements[1].string, let count = elements[2].int else { throw fail() }
            self = .subscribed(kind: kind, channel: channel, count: count)
        case ("unsubscribe", 3), ("punsubscribe", 3), ("sunsubscribe", 3):
            guard let count = elements[2].int else { throw fail() }
            self = .unsubscribed(kind: kind, channel: elements[1].string, count: count)
        case ("pong", 2):
            self = .pong(elements[1].bytes ?? ByteBuffer())
        default:
            throw fail()
        }
    }
}
