import AgentProtocol

/// How a language is built and run in the work directory. Commands are looked up in PATH
/// (/usr/local/bin:/usr/bin:/bin in the job's environment).
struct LanguageRecipe {
    var sourceFile: String
    var compile: [String]?
    var run: [String]
}

extension Language {
    /// A single-file program in the default file, as before revision 2.
    var recipe: LanguageRecipe { recipe(entry: defaultEntry) }

    /// The name `code` is written to, and the entry point of a project that names none (the host's
    /// `JobLanguage.defaultEntry` must agree; a test checks it).
    var defaultEntry: String {
        switch self {
        case .bash: "main.sh"
        case .python: "main.py"
        case .c: "main.c"
        case .cpp: "main.cpp"
        }
    }

    /// File name endings of the sources a compiled language links together.
    var sourceExtensions: [String] {
        switch self {
        case .c: [".c"]
        case .cpp: [".cpp", ".cc", ".cxx"]
        case .bash, .python: []
        }
    }

    /// The recipe for `entry`, compiled together with the other `sources` (compiled languages link every
    /// source file of the job), `options` after the language's own flags. `importable`: the program has
    /// other files, so Python must find modules next to its entry point.
    func recipe(entry: String, sources: [String] = [], options: [String] = [], importable: Bool = false) -> LanguageRecipe {
        let others = sources.filter { name in name != entry && sourceExtensions.contains { name.hasSuffix($0) } }.sorted()
        switch self {
        case .bash:
            return LanguageRecipe(sourceFile: entry, compile: nil, run: ["bash", entry])
        case .python:
            // -I ignores PYTHON* variables and the user site but also drops the script's directory from sys.path;
            // a program of several files needs that directory, so it gets -E -s (the same minus safe-path).
            let flags = importable ? ["-E", "-s", "-B"] : ["-I", "-B"]
            return LanguageRecipe(sourceFile: entry, compile: nil, run: ["python3"] + flags + [entry])
        case .c:
            return LanguageRecipe(
                sourceFile: entry, compile: ["gcc", "-O2", "-std=c17"] + options + ["-o", "main", entry] + others + ["-lm"],
                run: ["./main"])
        case .cpp:
            return LanguageRecipe(
                sourceFile: entry, compile: ["g++", "-O2", "-std=c++17"] + options + ["-o", "main", entry] + others,
                run: ["./main"])
        }
    }
}
