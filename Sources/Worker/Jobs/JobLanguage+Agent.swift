import AgentProtocol
import JobQueue

// The wire's names for what a job runs (JobQueue) meet the guest's (AgentProtocol) here, and only here.

extension JobLanguage {
    /// The guest's language for this wire name. Exhaustive on purpose: a language added to the wire
    /// does not compile until the guest runs it; the reverse is caught by a test.
    var agentLanguage: Language {
        switch self {
        case .python: .python
        case .c: .c
        case .cpp: .cpp
        case .bash: .bash
        }
    }
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
