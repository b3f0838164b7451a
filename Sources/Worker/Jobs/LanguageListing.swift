import FoundationEssentials
import Languages

/// What a platform needs to know of the image's languages: `codebench-worker languages` prints it and
/// the worker publishes it as JSON under ``WorkerConfiguration/languagesKey`` (README, "Languages").
public struct LanguageListing: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var aliases: [String]
        /// What the language's version command printed in the image; "unknown" for an image built before.
        public var version: String
        public var compiles: Bool
        /// The file `code` is written to (a project's default entry).
        public var source: String
    }

    public var languages: [Entry]

    public init(_ registry: LanguageRegistry) {
        languages = registry.languages.map {
            Entry(name: $0.name, aliases: $0.aliases, version: $0.version ?? "unknown", compiles: $0.compiles, source: $0.source)
        }
    }

    /// One JSON object, keys sorted: `{"languages":[{"aliases":["python3",...],"compiles":false,...}]}`.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data("{\"languages\":[]}".utf8), as: UTF8.self)
    }

    /// Aligned columns: name, aliases, version, compiles.
    public var table: String {
        let rows = [["NAME", "ALIASES", "VERSION", "COMPILES"]] + languages.map {
            [$0.name, $0.aliases.isEmpty ? "-" : $0.aliases.joined(separator: ","), $0.version, $0.compiles ? "yes" : "no"]
        }
        let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            (0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                + "  " + row[3]
        }.joined(separator: "\n")
    }
}
