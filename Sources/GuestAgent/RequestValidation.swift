import AgentProtocol

/// The agent trusts nothing in a request beyond ``RequestRules``: the same rules the host can apply to
/// a job before it boots a VM, so both refuse exactly the same requests.
enum RequestValidation {
    /// Largest frame payload the agent reads (a `run` with the largest stdin and source allowed).
    static let maximumRequestPayload = RequestRules.maximumRequestPayloadBytes

    static func validate(_ request: RunRequest) throws(AgentError) {
        if let problem = RequestRules.problem(request: request) { throw AgentError(.invalidRequest, problem) }
    }
}
