/// A language a job's `code` may be written in, by its canonical name in the guest image's registry
/// (docs/wire-contract.md: `language`, or its alias field `variant`).
///
/// A name, not an enum: which languages exist is the image's business (guest/languages.json). The parser
/// accepts the names and aliases of a ``JobLanguageCatalog``, which the worker builds from the image it
/// boots; ``JobLanguageCatalog/classic`` is the four every image has had.
public struct JobLanguage: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    /// The file `code` is written to, and the entry point of a project that names none (the image's
    /// `source`; the agent may still choose another from the code, as Java does).
    public var defaultEntry: String

    public init(name: String, defaultEntry: String) {
        self.name = name
        self.defaultEntry = defaultEntry
    }

    public var rawValue: String { name }
    public var description: String { name }

    public static let python = JobLanguage(name: "python", defaultEntry: "main.py")
    public static let c = JobLanguage(name: "c", defaultEntry: "main.c")
    public static let cpp = JobLanguage(name: "cpp", defaultEntry: "main.cpp")
    public static let bash = JobLanguage(name: "bash", defaultEntry: "main.sh")
}

/// The languages a parser accepts: canonical names with their aliases.
public struct JobLanguageCatalog: Sendable, Equatable {
    public private(set) var languages: [JobLanguage]
    private var byName: [String: JobLanguage]

    /// `aliases` maps other names (any case) to a canonical name in `languages`.
    public init(languages: [JobLanguage], aliases: [String: String] = [:]) {
        self.languages = languages
        var byName: [String: JobLanguage] = [:]
        for language in languages { byName[language.name.lowercased()] = language }
        for (alias, name) in aliases {
            if let language = byName[name.lowercased()] { byName[alias.lowercased()] = language }
        }
        self.byName = byName
    }

    /// What images had before languages were data (and what a client without an image assumes).
    public static let classic = JobLanguageCatalog(
        languages: [.python, .c, .cpp, .bash],
        aliases: ["python3": "python", "py": "python", "py3": "python", "c++": "cpp", "cxx": "cpp"])

    /// The language `name` stands for (a canonical name or an alias, case-insensitive), or nil.
    public func language(named name: String) -> JobLanguage? {
        byName[name.lowercased()]
    }

    /// The canonical names, comma-separated, as a refusal lists them: `python, c, cpp, bash`.
    public var knownList: String { languages.map(\.name).joined(separator: ", ") }
}
