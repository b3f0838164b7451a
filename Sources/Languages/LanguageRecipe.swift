/// The commands of one job in a language, placeholders filled in. In a registry command, `{entry}` is the
/// entry file, `{stem}` that name without its extension, `{work}` the work directory; an argument that is
/// exactly `{sources}` (the job's other source files) or `{options}` (its compiler options) becomes zero
/// or more arguments.
public struct LanguageRecipe: Sendable, Equatable {
    public var sourceFile: String
    public var compile: [String]?
    public var run: [String]
    /// `NAME=value` pairs added to the step's environment.
    public var environment: [String]

    public init(sourceFile: String, compile: [String]?, run: [String], environment: [String] = []) {
        self.sourceFile = sourceFile
        self.compile = compile
        self.run = run
        self.environment = environment
    }
}

extension LanguageDefinition {
    /// The file `code` is written to: ``source``, or the name ``sourceNameFrom`` finds in it.
    public func sourceFile(for code: String) -> String {
        guard let pattern = sourceNameFrom, let regex = try? Regex(pattern),
            let match = code.firstMatch(of: regex), match.output.count > 1,
            let stem = match.output[1].substring, !stem.isEmpty
        else { return source }
        return String(stem) + Self.fileExtension(source)
    }

    /// The recipe for `entry`, built with the job's other `sources` that this language compiles together,
    /// `options` after the language's own flags; `importable`: the program has other files.
    public func recipe(
        entry: String, sources: [String] = [], options: [String] = [], importable: Bool = false, workDirectory: String
    ) -> LanguageRecipe {
        let others = sources.filter { name in name != entry && sourceExtensions.contains { name.hasSuffix($0) } }.sorted()
        let stem = String(entry.dropLast(Self.fileExtension(entry).count))
        func expand(_ command: [String]) -> [String] {
            command.flatMap { argument -> [String] in
                switch argument {
                case "{sources}": others
                case "{options}": options
                default: [Self.fill(argument, entry: entry, stem: stem, work: workDirectory)]
                }
            }
        }
        let runCommand = importable ? (runWithModules ?? run) : run
        let environment = self.environment.sorted { $0.key < $1.key }.map {
            "\($0.key)=\(Self.fill($0.value, entry: entry, stem: stem, work: workDirectory))"
        }
        return LanguageRecipe(sourceFile: entry, compile: compile.map(expand), run: expand(runCommand), environment: environment)
    }

    private static func fill(_ text: String, entry: String, stem: String, work: String) -> String {
        guard text.contains("{") else { return text }
        return text.replacing("{entry}", with: entry).replacing("{stem}", with: stem).replacing("{work}", with: work)
    }

    /// `.java` of `Main.java`; empty for a name without a dot after its last slash.
    static func fileExtension(_ name: String) -> String {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return "" }
        return String(base[dot...])
    }
}
