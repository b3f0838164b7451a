import AgentProtocol
import FoundationEssentials
import Languages

/// The image's language registry, which the image build installs at ``LanguageRegistry/guestPath``
/// (`$CODEBENCH_LANGUAGES` overrides it: the host test mode runs against the repository's file).
enum AgentLanguages {
    static func load() -> LanguageRegistry? {
        let path = ProcessInfo.processInfo.environment["CODEBENCH_LANGUAGES"] ?? LanguageRegistry.guestPath
        do {
            guard let registry = try LanguageRegistry.load(path: path) else {
                Log.error("no language registry at \(path): only shell commands can run")
                return nil
            }
            return registry
        } catch {
            Log.error("language registry \(path) is unreadable: \(error)")
            return nil
        }
    }
}

extension LanguageRegistry {
    /// The definition of a language the host sent, or an error naming what this image has.
    func definition(_ language: Language) throws -> LanguageDefinition {
        guard let definition = self.language(named: language.rawValue) else {
            throw AgentError.unknownLanguage(language.rawValue, known: names)
        }
        return definition
    }
}

extension LanguageDefinition {
    /// `limits` raised to the floors this language needs; memory for the run, `compileMemoryBytes` for the compile.
    func raising(_ limits: ResourceLimits) -> ResourceLimits {
        var raised = limits
        if let memory = self.limits.memoryMiB { raised.memoryBytes = max(raised.memoryBytes, memory << 20) }
        if let compile = self.limits.compileMemoryMiB {
            raised.compileMemoryBytes = max(raised.compileMemoryBytes ?? raised.memoryBytes, compile << 20)
        }
        if let processes = self.limits.processes { raised.maxProcesses = max(raised.maxProcesses, processes) }
        return raised
    }
}
