import NIOCore
import Synchronization

/// The open connections of a server: caps how many there are and closes them all on shutdown, which
/// closing the listening socket alone does not.
final class ConnectionTracker: Sendable {
    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var shuttingDown = false
    }

    private let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    var count: Int { state.withLock { $0.open.count } }

    /// Takes `channel` in, or returns false when full or shutting down (the caller closes it).
    func admit(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let admitted = state.withLock { state in
            guard !state.shuttingDown, state.open.count < limit else { return false }
            state.open[id] = channel
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { _ in
                self.state.withLock { _ = $0.open.removeValue(forKey: id) }
            }
        }
        return admitted
    }

    /// Closes every connection and admits no more.
    func closeAll() {
        let channels = state.withLock { state in
            state.shuttingDown = true
            return Array(state.open.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }
}
