import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The languages of one guest image, read from its languages.json (the repository's guest/languages.json,
/// or the copy the image build resolved, with versions, into the image and next to rootfs.ext4).
public struct LanguageRegistry: Sendable, Equatable {
    public var languages: [LanguageDefinition]

    /// Where the image build installs the registry in the guest's root filesystem.
    public static let guestPath = "/usr/lib/codebench/languages.json"
    /// Its name next to rootfs.ext4 in an image directory.
    public static let imageFileName = "languages.json"

    public init(languages: [LanguageDefinition]) {
        self.languages = languages
    }

    private struct File: Codable {
        var languages: [LanguageDefinition]
    }

    public init(json: Data) throws {
        languages = try JSONDecoder().decode(File.self, from: json).languages
        var seen: Set<String> = []
        for language in languages {
            for name in [language.name] + language.aliases {
                guard seen.insert(name.lowercased()).inserted else { throw LanguageRegistryError.duplicateName(name) }
            }
        }
    }

    /// Reads `path`; nil when there is no such file.
    public static func load(path: String) throws -> LanguageRegistry? {
        guard access(path, F_OK) == 0 else { return nil }
        return try LanguageRegistry(json: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The image directory's registry, or ``legacy`` for an image built before languages were data.
    public static func image(directory: String) throws -> LanguageRegistry {
        try load(path: directory + "/" + imageFileName) ?? legacy
    }

    /// The language `name` or an alias stands for (case-insensitive), or nil.
    public func language(named name: String) -> LanguageDefinition? {
        let lowercased = name.lowercased()
        return languages.first { $0.name == lowercased || $0.aliases.contains(lowercased) }
    }

    public var names: [String] { languages.map(\.name) }

    /// The four languages every image had before the registry: what the host assumes of an image
    /// directory without languages.json (names and shapes only; such an image's agent knows its recipes).
    public static let legacy = LanguageRegistry(languages: [
        LanguageDefinition(name: "python", aliases: ["python3", "py", "py3"], source: "main.py", run: ["python3", "{entry}"]),
        LanguageDefinition(name: "c", source: "main.c", compile: ["gcc"], run: ["./main"]),
        LanguageDefinition(name: "cpp", aliases: ["c++", "cxx"], source: "main.cpp", compile: ["g++"], run: ["./main"]),
        LanguageDefinition(name: "bash", source: "main.sh", run: ["bash", "{entry}"]),
    ])
}

public enum LanguageRegistryError: Error, CustomStringConvertible, Equatable {
    case duplicateName(String)

    public var description: String {
        switch self {
        case .duplicateName(let name): "the language registry names '\(name)' twice"
        }
    }
}
