import Synchronization

/// The largest agent frame payload accepted right now, shared between an ``AgentConnection`` (which
/// sets it per request from the request's output limits) and its channel decoder (which enforces it
/// before buffering a frame). The guest is not trusted: a frame announcing more is a protocol error.
final class AgentFrameLimit: Sendable {
    private let bytes: Atomic<Int>

    init(_ bytes: Int) { self.bytes = Atomic(bytes) }

    var value: Int {
        get { bytes.load(ordering: .relaxed) }
        set { bytes.store(newValue, ordering: .relaxed) }
    }

    func set(_ newValue: Int) { bytes.store(newValue, ordering: .relaxed) }
}
