/// What `/readyz` answers: ready (perhaps with a warning for the operator), or not with a one-line reason.
public enum Readiness: Sendable, Equatable {
    case ready
    /// Ready, with something the operator must know: 200 `ready (warning: <text>)`.
    case readyWithWarning(String)
    /// `reason` is the response body (`starting`, `draining`, ...).
    case notReady(String)

    /// `.ready` for nil, else `.notReady(reason)`.
    public init(notReadyReason: String?) {
        self = notReadyReason.map(Readiness.notReady) ?? .ready
    }

    /// As ``init(notReadyReason:)``; a ready worker with a `warning` is ``readyWithWarning(_:)``.
    public init(notReadyReason: String?, warning: String?) {
        if let notReadyReason {
            self = .notReady(notReadyReason)
        } else {
            self = warning.map(Readiness.readyWithWarning) ?? .ready
        }
    }
}
