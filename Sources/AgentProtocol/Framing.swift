import FoundationEssentials

/// Frames on the agent channel:
///
///     +------+------+------+---------+----------------------+-----------------+
///     | 'C'  | 'B'  | 'A'  | version | length (UInt32, BE)  | JSON payload    |
///     +------+------+------+---------+----------------------+-----------------+
///
/// The payload is one JSON-encoded ``AgentMessage``. The magic lets either side notice a
/// desynchronised stream (e.g. console noise on a serial line) instead of reading garbage lengths.
public enum AgentFrame {
    public static let magic: [UInt8] = [0x43, 0x42, 0x41]  // "CBA"
    public static let headerSize = 8
    /// Upper bound accepted by default on either side; outputs are bounded far below this by limits.
    public static let defaultMaximumPayload = 64 << 20

    /// Encodes one message as a complete frame.
    public static func encode(_ message: AgentMessage, codec: AgentPayloadCodec = .foundation) throws -> [UInt8] {
        let payload: [UInt8] = switch codec {
        case .foundation: Array(try JSONEncoder().encode(message))
        case .compact: message.encodeWire()
        }
        var frame = magic
        frame.append(agentProtocolVersion)
        let length = UInt32(payload.count)
        frame.append(UInt8(truncatingIfNeeded: length >> 24))
        frame.append(UInt8(truncatingIfNeeded: length >> 16))
        frame.append(UInt8(truncatingIfNeeded: length >> 8))
        frame.append(UInt8(truncatingIfNeeded: length))
        frame.append(contentsOf: payload)
        return frame
    }
}

/// Which JSON implementation reads and writes frame payloads; the bytes on the wire mean the same
/// either way. The host uses Foundation's Codable; the agent uses ``WireJSON``, whose far smaller code
/// QEMU's TCG translates in a fraction of the time in every VM restored from a snapshot.
public enum AgentPayloadCodec: Sendable {
    case foundation
    case compact
}

/// Why a frame could not be read.
public struct AgentFrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badMagic = "bad_magic"
        case unsupportedVersion = "unsupported_version"
        case tooLarge = "too_large"
        case invalidPayload = "invalid_payload"
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "agent frame \(code.rawValue): \(detail)" }
}

/// Incremental frame decoder: feed bytes as they arrive, take complete messages out.
/// Never traps on hostile input; every problem is an ``AgentFrameError``.
public struct AgentFrameDecoder: Sendable {
    public let maximumPayload: Int
    public let codec: AgentPayloadCodec
    private var buffer: [UInt8] = []
    private var start = 0

    public init(maximumPayload: Int = AgentFrame.defaultMaximumPayload, codec: AgentPayloadCodec = .foundation) {
        self.maximumPayload = maximumPayload
        self.codec = codec
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete message, nil if more bytes are needed.
    public mutating func next() throws(AgentFrameError) -> AgentMessage? {
        let available = buffer.count - start
        guard available >= AgentFrame.headerSize else { return nil }
        guard buffer[start] == AgentFrame.magic[0], buffer[start + 1] == AgentFrame.magic[1],
            buffer[start + 2] == AgentFrame.magic[2]
        else {
            throw AgentFrameError(.badMagic, "stream is not at a frame boundary")
        }
        guard buffer[start + 3] == agentProtocolVersion else {
            throw AgentFrameError(.unsupportedVersion, "peer speaks version \(buffer[start + 3]), we speak \(agentProtocolVersion)")
        }
        let length =
            Int(buffer[start + 4]) << 24 | Int(buffer[start + 5]) << 16 | Int(buffer[start + 6]) << 8 | Int(buffer[start + 7])
        guard length <= maximumPayload else {
            throw AgentFrameError(.tooLarge, "frame of \(length) bytes exceeds the limit of \(maximumPayload)")
        }
        guard available >= AgentFrame.headerSize + length else { return nil }
        let payloadStart = start + AgentFrame.headerSize
        let payloadBytes = Array(buffer[payloadStart..<(payloadStart + length)])
        start = payloadStart + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 1 << 20 {
            buffer.removeFirst(start)
            start = 0
        }
        switch codec {
        case .compact:
            do throws(WireJSON.Failure) {
                return try AgentMessage.decodeWire(payloadBytes)
            } catch {
                throw AgentFrameError(.invalidPayload, "\(error)")
            }
        case .foundation:
            do {
                return try JSONDecoder().decode(AgentMessage.self, from: Data(payloadBytes))
            } catch {
                throw AgentFrameError(.invalidPayload, "\(error)")
            }
        }
    }
}
