/// What `/readyz` answers: ready, or not with a one-line reason.
public enum Readiness: Sendable, Equatable {
    case ready
    /// `reason` is the response body (`starting`, `draining`, ...).
    case notReady(String)

    /// `.ready` for nil, else `.notReady(reason)`.
    public init(notReadyReason: String?) {
        self = notReadyReason.map(Readiness.notReady) ?? .ready
    }
}
