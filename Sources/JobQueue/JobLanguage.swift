/// A language a job's `code` may be written in, by the names the wire contract gives it
/// (docs/wire-contract.md: `language`, or its alias field `variant`).
///
/// This is the queue's vocabulary, not the guest agent's: the parser accepts exactly these names and
/// aliases whatever worker runs it, so two workers never disagree on whether a payload is a job. The
/// Worker maps each case to the language its guest runs in one exhaustive switch,
/// and a test checks that the two lists match, so a language added on one side only fails at once.
public enum JobLanguage: String, Sendable, Equatable, CaseIterable {
    case python
    case c
    case cpp
    case bash

    /// Other names platforms send for a language, lowercased.
    public static let aliases: [String: JobLanguage] = [
        "python3": .python, "py": .python, "py3": .python,
        "c++": .cpp, "cxx": .cpp,
    ]

    /// The language `name` stands for (a case's raw value or an alias, case-insensitive), or nil.
    public init?(named name: String) {
        let lowercased = name.lowercased()
        guard let language = JobLanguage(rawValue: lowercased) ?? Self.aliases[lowercased] else { return nil }
        self = language
    }

    /// The canonical names, comma-separated, as a refusal lists them: `python, c, cpp, bash`.
    static var knownList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
