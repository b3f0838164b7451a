import AgentProtocol

/// How a language is built and run in the work directory. Commands are looked up in PATH
/// (/usr/local/bin:/usr/bin:/bin in the job's environment).
struct LanguageRecipe {
    var sourceFile: String
    var compile: [String]?
    var run: [String]
}

extension Language {
    var recipe: LanguageRecipe {
        switch self {
        case .bash:
            LanguageRecipe(sourceFile: "main.sh", compile: nil, run: ["bash", "main.sh"])
        case .python:
            // -I: ignore PYTHON* variables and the user site; -B: no .pyc files in the work directory.
            LanguageRecipe(sourceFile: "main.py", compile: nil, run: ["python3", "-I", "-B", "main.py"])
        case .c:
            LanguageRecipe(sourceFile: "main.c", compile: ["gcc", "-O2", "-std=c17", "-o", "main", "main.c", "-lm"], run: ["./main"])
        case .cpp:
            LanguageRecipe(sourceFile: "main.cpp", compile: ["g++", "-O2", "-std=c++17", "-o", "main", "main.cpp"], run: ["./main"])
        }
    }
}
