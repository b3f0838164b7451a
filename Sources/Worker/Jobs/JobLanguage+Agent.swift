import AgentProtocol
import JobQueue

// The wire's names for what a job runs (JobQueue) meet the guest's (AgentProtocol) here, and only here.
// Both are the canonical names of the image's registry, which the parser already resolved aliases to.

extension JobLanguage {
    /// The guest's language for this wire name.
    var agentLanguage: Language { Language(name) }
}

extension JobRequest.Workload {
    /// The workload as the guest agent receives it.
    var agentWorkload: Workload {
        switch self {
        case .shell(let command): .shell(command: command)
        case .program(let language, let source): .program(language: language.agentLanguage, source: source)
        case .project(let language, let entry): .project(language: language.agentLanguage, entry: entry)
        }
    }
}
