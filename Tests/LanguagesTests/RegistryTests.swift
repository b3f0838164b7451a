import Foundation
import Languages
import Testing

/// The repository's guest/languages.json, which the image build resolves.
enum RepositoryRegistry {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("guest/languages.json").path

    static var guest: String { (path as NSString).deletingLastPathComponent }

    static func load() throws -> LanguageRegistry {
        try #require(try LanguageRegistry.load(path: path))
    }
}

@Suite struct RegistryTests {
    @Test func theRepositoryRegistryHasTheIssuesLanguagesEachWithAHelloWorld() throws {
        let registry = try RepositoryRegistry.load()
        let required = ["python", "c", "cpp", "bash", "javascript", "typescript", "java", "go", "rust", "ruby", "php", "lua", "perl"]
        #expect(Set(required).isSubset(of: Set(registry.names)))
        for language in registry.languages {
            #expect(!language.hello.source.isEmpty && language.hello.stdout.hasSuffix("\n"), "\(language.name)")
            #expect(!language.versionCommand.isEmpty, "\(language.name)")
            #expect(language.version == nil, "the repository's registry carries no measured version (\(language.name))")
            #expect(language.name == language.name.lowercased() && language.aliases.allSatisfy { $0 == $0.lowercased() })
        }
    }

    @Test func namesAndAliasesResolveCaseInsensitively() throws {
        let registry = try RepositoryRegistry.load()
        #expect(registry.language(named: "Python3")?.name == "python")
        #expect(registry.language(named: "C++")?.name == "cpp")
        #expect(registry.language(named: "JS")?.name == "javascript")
        #expect(registry.language(named: "golang")?.name == "go")
        #expect(registry.language(named: "cobol") == nil)
    }

    @Test func aNameUsedTwiceIsRefused() {
        let json = #"{"languages": [{"name": "a", "source": "a", "run": ["a"]}, {"name": "b", "aliases": ["a"], "source": "b", "run": ["b"]}]}"#
        #expect(throws: LanguageRegistryError.duplicateName("a")) { try LanguageRegistry(json: Data(json.utf8)) }
    }

    @Test func aMissingFileIsNilNotAnError() throws {
        #expect(try LanguageRegistry.load(path: "/nonexistent/languages.json") == nil)
        #expect(try LanguageRegistry.image(directory: "/nonexistent") == LanguageRegistry.legacy)
    }
}

@Suite struct RecipeTests {
    @Test func theClassicRecipesAreUnchanged() throws {
        let registry = try RepositoryRegistry.load()
        let c = try #require(registry.language(named: "c"))
        #expect(c.recipe(entry: "main.c", sources: ["util.c", "data.txt", "main.c", "a.c"], options: ["-DX"], workDirectory: "/w")
            == LanguageRecipe(
                sourceFile: "main.c", compile: ["gcc", "-O2", "-std=c17", "-DX", "-o", "main", "main.c", "a.c", "util.c", "-lm"],
                run: ["./main"]))
        let cpp = try #require(registry.language(named: "cpp"))
        // Plus the folder of precompiled headers, which holds no header, only GCC's .gch files.
        #expect(
            cpp.recipe(entry: "main.cpp", workDirectory: "/w").compile
                == ["g++", "-O2", "-std=c++17", "-I/usr/lib/codebench/cpp/pch", "-o", "main", "main.cpp"])
        let python = try #require(registry.language(named: "python"))
        #expect(python.recipe(entry: "main.py", workDirectory: "/w").run == ["python3", "-I", "-B", "main.py"])
        #expect(python.recipe(entry: "app.py", importable: true, workDirectory: "/w").run == ["python3", "-E", "-s", "-B", "app.py"])
        let bash = try #require(registry.language(named: "bash"))
        #expect(bash.recipe(entry: "main.sh", workDirectory: "/w") == LanguageRecipe(sourceFile: "main.sh", compile: nil, run: ["bash", "main.sh"]))
    }

    @Test func javaNamesTheFileAfterThePublicClassElseMain() throws {
        let java = try #require(try RepositoryRegistry.load().language(named: "java"))
        #expect(java.sourceFile(for: "import java.util.*;\npublic final class Solution {\n}") == "Solution.java")
        #expect(java.sourceFile(for: "class Helper {}\nclass Main {}") == "Main.java")
        let recipe = java.recipe(entry: "Solution.java", workDirectory: "/w")
        #expect(recipe.run.last == "Solution" && recipe.compile?.contains("Solution.java") == true)
    }

    @Test func environmentValuesPointIntoTheWorkDirectory() throws {
        let go = try #require(try RepositoryRegistry.load().language(named: "go"))
        let recipe = go.recipe(entry: "main.go", workDirectory: "/tmp/job-1")
        #expect(recipe.environment.contains("GOCACHE=/tmp/job-1/.cache/go-build"))
        #expect(recipe.environment.allSatisfy { !$0.contains("{") })
    }

    /// An image setup names a script of guest/language-setup/ by its installed path; the image build
    /// installs that folder there.
    @Test func everyImageSetupRunsAScriptOfTheRepository() throws {
        let setups = try RepositoryRegistry.load().languages.compactMap(\.imageSetup)
        #expect(!setups.isEmpty)
        for setup in setups {
            let script = try #require(setup.last, "\(setup)")
            let installed = "/usr/lib/codebench/language-setup/"
            #expect(script.hasPrefix(installed), "\(setup)")
            let source = RepositoryRegistry.guest + "/language-setup/" + script.dropFirst(installed.count)
            #expect(FileManager.default.fileExists(atPath: source), "\(source)")
        }
    }

    /// The CDS archive guest/language-setup/java.sh makes is mapped only by a JVM with the flags it was
    /// made with (the JVM ignores it otherwise): the script's -J flags are the compile command's.
    @Test func javasArchiveIsMadeWithTheCompileCommandsJVMFlags() throws {
        let java = try #require(try RepositoryRegistry.load().language(named: "java"))
        let compile = try #require(java.compile)
        let archive = "-J-XX:SharedArchiveFile=/usr/lib/codebench/java/javac.jsa"
        #expect(compile.contains(archive))
        let recipeFlags = compile.filter { $0.hasPrefix("-J") && $0 != archive }
        let script = try String(contentsOfFile: RepositoryRegistry.guest + "/language-setup/java.sh", encoding: .utf8)
        let line = try #require(script.split(separator: "\n").first { $0.contains("javac -J") })
        let scriptFlags = line.split(separator: " ").map(String.init).filter { $0.hasPrefix("-J") }
        #expect(scriptFlags == recipeFlags, "java.sh: \(scriptFlags), recipe: \(recipeFlags)")
        #expect(script.contains("-J-XX:ArchiveClassesAtExit=\"$archive.partial\"") && script.contains("archive=/usr/lib/codebench/java/javac.jsa"))
    }

    /// GCC uses a precompiled header only under the flags it was made with: guest/language-setup/cpp.sh
    /// makes them with the compile command's.
    @Test func cppsPrecompiledHeadersAreMadeWithTheCompileCommandsFlags() throws {
        let cpp = try #require(try RepositoryRegistry.load().language(named: "cpp"))
        let compile = try #require(cpp.compile)
        let include = try #require(compile.firstIndex(of: "-I/usr/lib/codebench/cpp/pch"))
        let recipeFlags = Array(compile[1..<include])
        let script = try String(contentsOfFile: RepositoryRegistry.guest + "/language-setup/cpp.sh", encoding: .utf8)
        #expect(script.contains("pch=/usr/lib/codebench/cpp/pch"))
        let lines = script.split(separator: "\n").filter { $0.contains("g++ ") && $0.contains("-x c++") }
        #expect(lines.count == 2, "\(lines)")
        for line in lines {
            let words = line.split(separator: " ").map(String.init)
            let start = try #require(words.firstIndex { $0.hasSuffix("g++") })
            #expect(Array(words[(start + 1)..<(start + 1 + recipeFlags.count)]) == recipeFlags, "cpp.sh: \(line), recipe: \(recipeFlags)")
        }
    }

    @Test func typescriptRunsTheJavaScriptItsCompilerWrote() throws {
        let ts = try #require(try RepositoryRegistry.load().language(named: "ts"))
        #expect(ts.recipe(entry: "src/app.ts", workDirectory: "/w").run == ["node", "src/app.js"])
    }
}
