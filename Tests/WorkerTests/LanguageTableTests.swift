import Foundation
import Languages
import MicroVM
import TestSupport
import Testing

@testable import Worker

/// Every language of the image through the worker (real redis-server, real VMs): its hello world prints
/// what the registry says; a compile error in a compiled one is `failed` with the compiler's first error
/// line; a runtime error is `done` with `runtime_error` and a non-zero exit code. Adding a language to
/// guest/languages.json means adding its row to `errors` (the first test fails until it is there).
@Suite("Languages end to end", .serialized)
struct LanguageTableTests {
    /// A program that fails to compile (nil for languages without a compile step), one that fails at run time.
    struct Errors {
        var compile: String?
        var runtime: String
    }

    static let errors: [String: Errors] = [
        "python": Errors(compile: nil, runtime: "raise SystemExit(3)\n"),
        "c": Errors(compile: "int main(void) { return undefined_name; }\n", runtime: "int main(void) { return 3; }\n"),
        "cpp": Errors(compile: "int main() { undefined_name(); }\n", runtime: "#include <cstdlib>\nint main() { std::exit(3); }\n"),
        "bash": Errors(compile: nil, runtime: "exit 3\n"),
        "javascript": Errors(compile: nil, runtime: "throw new Error('boom');\n"),
        "typescript": Errors(compile: "const n: number = 'text';\n", runtime: "throw new Error('boom');\n"),
        "java": Errors(
            compile: "public class Main { public static void main(String[] a) { int x = \"s\"; } }\n",
            runtime: "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }\n"),
        "go": Errors(
            compile: "package main\n\nfunc main() { undefinedName() }\n",
            runtime: "package main\n\nimport \"os\"\n\nfunc main() { os.Exit(3) }\n"),
        "rust": Errors(compile: "fn main() { let x: i32 = \"s\"; }\n", runtime: "fn main() { std::process::exit(3); }\n"),
        "ruby": Errors(compile: nil, runtime: "raise 'boom'\n"),
        "php": Errors(compile: nil, runtime: "<?php\nexit(3);\n"),
        "lua": Errors(compile: nil, runtime: "error('boom')\n"),
        "perl": Errors(compile: nil, runtime: "die \"boom\\n\";\n"),
    ]

    static func imageLanguages() throws -> LanguageRegistry {
        let image = try GuestImageFixture.require()
        return try LanguageRegistry.image(directory: (image.kernelPath as NSString).deletingLastPathComponent)
    }

    /// Heavy compilers under TCG on a loaded host take many seconds (tsc alone about 40 s of CPU): the
    /// wall limit, which bounds the compile too, goes past the worker's default maximum of 60 s.
    static let limits = #","timeout_ms":150000"#

    static func configure(_ configuration: inout WorkerConfiguration) {
        configuration.concurrency = 2
        configuration.maximumLimits.wallTimeMilliseconds = 150_000
    }

    static func payload(id: String, language: String, code: String, extra: String = "") throws -> String {
        let code = String(decoding: try JSONEncoder().encode(code), as: UTF8.self)
        return #"{"id":"\#(id)","language":"\#(language)","code":\#(code)\#(limits)\#(extra)}"#
    }

    @Test("the worker publishes the image's languages under jobs:languages at start, as `languages --json` prints them")
    func languagesArePublished() async throws {
        let registry = try Self.imageLanguages()
        try await WorkerHarness.with { harness in
            // The key is written before the worker claims its first job: one job done means it is there.
            try harness.push(#"{"id":"lang-key","command":"true"}"#)
            _ = try await harness.readStatuses("lang-key")
            let json = try harness.redisCLI("GET", "jobs:languages")
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
            let listed = (object as? [String: Any])?["languages"] as? [[String: Any]] ?? []
            let names = listed.compactMap { $0["name"] as? String }
            #expect(names == registry.names, "\(json.prefix(300))")
            let python = listed.first { $0["name"] as? String == "python" }
            let version = python?["version"] as? String ?? ""
            #expect(!version.isEmpty && version != "unknown", "each language carries the version measured in the image: \(version)")
        }
    }

    @Test("every language of the image has its error programs here")
    func tableCoversTheImage() throws {
        let missing = try Self.imageLanguages().names.filter { Self.errors[$0] == nil }
        #expect(missing.isEmpty, "add rows for \(missing)")
    }

    @Test("each hello world prints its expected output, under the default memory limit and under 64 MiB")
    func helloWorlds() async throws {
        let languages = try Self.imageLanguages().languages
        try await WorkerHarness.with(configure: Self.configure) { harness in
            for language in languages {
                try harness.push(try Self.payload(id: "hello-\(language.name)", language: language.name, code: language.hello.source))
                try harness.push(try Self.payload(
                    id: "hello64-\(language.name)", language: language.name, code: language.hello.source,
                    extra: #","limits":{"memory_mb":64}"#))
            }
            for language in languages {
                for id in ["hello-\(language.name)", "hello64-\(language.name)"] {
                    let elements = try await harness.readStatuses(id, timeout: 300)
                    #expect(Array(elements.prefix(4)) == ["received", "running", "done", language.hello.stdout], "\(id): \(elements)")
                }
            }
        }
    }

    @Test("a compile error is failed with the compiler's first error line; a runtime error is done, runtime_error, non-zero")
    func errorsEndToEnd() async throws {
        let registry = try Self.imageLanguages()
        try await WorkerHarness.with(configure: Self.configure) { harness in
            for language in registry.languages {
                let errors = try #require(Self.errors[language.name])
                if language.compiles, let compile = errors.compile {
                    try harness.push(try Self.payload(id: "cerr-\(language.name)", language: language.name, code: compile))
                }
                try harness.push(try Self.payload(id: "rerr-\(language.name)", language: language.name, code: errors.runtime))
            }
            for language in registry.languages {
                if language.compiles {
                    let elements = try await harness.readStatuses("cerr-\(language.name)", timeout: 300)
                    #expect(elements.prefix(3) == ["received", "running", "failed"], "\(language.name): \(elements)")
                    let reason = elements.count > 3 ? elements[3] : ""
                    #expect(reason.hasPrefix("compile error: ") && reason.count > "compile error: ".count, "\(language.name): \(reason)")
                    #expect(WorkerHarness.result(elements)["verdict"] as? String == "compile_error", "\(language.name)")
                }
                let elements = try await harness.readStatuses("rerr-\(language.name)", timeout: 300)
                #expect(elements.prefix(3) == ["received", "running", "done"], "\(language.name): \(elements)")
                let result = WorkerHarness.result(elements)
                #expect(result["verdict"] as? String == "runtime_error", "\(language.name): \(result)")
                #expect((result["exit_code"] as? Int ?? 0) != 0, "\(language.name): \(result)")
            }
        }
    }
}
