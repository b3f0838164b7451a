import Foundation
import Testing

@testable import Worker

/// Judge mode end to end: a real redis-server, the worker, real VMs (QEMU under TCG). Cases are grouped
/// into few jobs, and the jobs of one test share one worker: each VM costs seconds here.
@Suite("Judge mode end to end", .serialized)
struct JudgeJobTests {
    static func payload(_ fields: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), as: UTF8.self)
    }

    static func cases(_ result: [String: Any]) -> [[String: Any]] { result["tests"] as? [[String: Any]] ?? [] }
    static func verdicts(_ result: [String: Any]) -> [String] { cases(result).compactMap { $0["verdict"] as? String } }

    static let sum = "#include <stdio.h>\nint main(void) { long a, b; if (scanf(\"%ld %ld\", &a, &b) != 2) return 2; printf(\"%ld\\n\", a + b); return 0; }\n"
    static var sumTests: [[String: Any]] {[
        ["name": "small", "stdin": "1 2", "expected_output": "3\n"],
        ["name": "zero", "stdin": "0 0", "expected_output": "0"],
        ["name": "negative", "stdin": "-5 3", "expected_output": "-2\n"],
        ["name": "wrong", "stdin": "2 2", "expected_output": "5\n"],
        ["name": "big", "stdin": "1000000 2000000", "expected_output": "3000000\n"],
    ]}

    @Test("a C program on 5 cases with one wrong; with stop_on_failure the rest are skipped; each compare mode")
    func casesAndComparisons() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(try Self.payload(["id": "c5", "language": "c", "code": Self.sum, "tests": Self.sumTests]))
            try harness.push(try Self.payload([
                "id": "c5s", "language": "c", "code": Self.sum, "tests": Self.sumTests, "stop_on_failure": true,
            ]))
            // Each mode: one case differing only in what the mode ignores, one differing in more.
            let modes: [(String, String, String, String)] = [
                ("exact", "a b\n", "a b\n", "a b \n"),
                ("trimmed", "a b\nc\n", "a b  \nc\t\n\n", " a b\nc\n"),
                ("tokens", "a b\nc\n", "a\n\nb   c", "a b c d"),
                ("float:0.001", "3.14159 ok\n", "3.1416 ok", "3.15 ok"),
            ]
            for (mode, expected, same, different) in modes {
                try harness.push(try Self.payload([
                    "id": "m-\(mode)", "command": "cat", "compare": mode,
                    "tests": [["stdin": same, "expected_output": expected], ["stdin": different, "expected_output": expected]],
                ]))
            }
            // Case 1 leaves files in its directory and /tmp; case 2 must see neither.
            try harness.push(try Self.payload([
                "id": "leak", "command": #"if [ -e mine ] || [ -e /tmp/mine ]; then echo leaked; fi; touch mine /tmp/mine; echo ok"#,
                "tests": [["expected_output": "ok"], ["expected_output": "ok"]],
            ]))

            let all = try await harness.readStatuses("c5")
            #expect(all.prefix(3) == ["received", "running", "done"], "\(all)")
            #expect(all.count == 6 && all[3] == "4\n", "the failing case's stdout: \(all)")
            let result = WorkerHarness.result(all)
            #expect(Self.verdicts(result) == ["accepted", "accepted", "accepted", "wrong_answer", "accepted"])
            #expect(result["passed"] as? Int == 4 && result["total"] as? Int == 5)
            #expect(result["verdict"] as? String == "wrong_answer")
            #expect(Self.cases(result).map { $0["name"] as? String } == ["small", "zero", "negative", "wrong", "big"])
            #expect(Self.cases(result)[4]["stdout"] as? String == "3000000\n")

            let stopped = WorkerHarness.result(try await harness.readStatuses("c5s"))
            #expect(Self.verdicts(stopped) == ["accepted", "accepted", "accepted", "wrong_answer", "skipped"])
            #expect(stopped["passed"] as? Int == 3)

            for (mode, _, _, _) in modes {
                let elements = try await harness.readStatuses("m-\(mode)")
                #expect(Self.verdicts(WorkerHarness.result(elements)) == ["accepted", "wrong_answer"], "\(mode): \(elements)")
            }
            let leak = WorkerHarness.result(try await harness.readStatuses("leak"))
            #expect(Self.verdicts(leak) == ["accepted", "accepted"], "\(leak)")
        }
    }

    @Test("a Python checker accepts any order of the lines; a crashing checker is internal_error; files, modules and args")
    func checkerFilesAndArguments() async throws {
        try await WorkerHarness.with { harness in
            let checker = """
                import sys
                def lines(path):
                    return sorted(line for line in open(path).read().splitlines() if line.strip())
                sys.exit(0 if lines(sys.argv[2]) == lines(sys.argv[3]) else 1)
                """
            let tests: [[String: Any]] = [
                ["name": "shuffled", "stdin": "c\na\nb\n", "expected_output": "a\nb\nc\n"],
                ["name": "missing", "stdin": "a\nb\n", "expected_output": "a\nb\nc\n"],
            ]
            try harness.push(try Self.payload(["id": "chk", "command": "cat", "tests": tests, "checker": ["language": "python", "code": checker]]))
            try harness.push(try Self.payload([
                "id": "crash", "command": "cat", "tests": tests, "checker": ["language": "python", "code": "import os\nos.abort()"],
            ]))
            try harness.push(try Self.payload([
                "id": "cpp", "language": "cpp",
                "files": [
                    ["name": "main.cpp", "content": "#include <cstdio>\n#include \"shapes.h\"\nint main() { std::printf(\"%d %d\\n\", area(3, 4), perimeter(3, 4)); }\n"],
                    ["name": "shapes.h", "content": "int area(int, int);\nint perimeter(int, int);\n"],
                    ["name": "area.cpp", "content": "#include \"shapes.h\"\nint area(int a, int b) { return a * b; }\n"],
                    ["name": "perimeter.cpp", "content": "#include \"shapes.h\"\nint perimeter(int a, int b) { return 2 * (a + b); }\n"],
                ],
                // Three g++ runs under TCG take ~8 s on an idle host: room for a busy one.
                "limits": ["compile_wall_time_ms": 45000],
            ]))
            try harness.push(try Self.payload([
                "id": "py", "language": "python", "args": ["alpha", "two words"],
                "code": "import sys\nfrom helpers import shout\nprint(shout(open('data/words.txt').read().strip()), sys.argv[1:])\n",
                "files": [
                    ["name": "helpers.py", "content": "def shout(s):\n    return s.upper()\n"],
                    ["name": "data/words.txt", "content": "aGVsbG8gZGF0YQo=", "encoding": "base64"],
                ],
            ]))
            try harness.push(#"{"id":"badname","command":"true","files":[{"name":"../escape","content":"x"}]}"#)

            let checked = WorkerHarness.result(try await harness.readStatuses("chk"))
            #expect(Self.verdicts(checked) == ["accepted", "wrong_answer"], "\(checked)")
            let crashed = try await harness.readStatuses("crash")
            #expect(crashed.prefix(3) == ["received", "running", "done"], "\(crashed)")
            let crashResult = WorkerHarness.result(crashed)
            #expect(Self.verdicts(crashResult) == ["internal_error", "internal_error"], "\(crashResult)")
            #expect(crashResult["verdict"] as? String == "internal_error")
            #expect((Self.cases(crashResult).first?["message"] as? String)?.hasPrefix("checker failed: killed by signal 6") == true)

            let cpp = try await harness.readStatuses("cpp")
            #expect(cpp.prefix(4) == ["received", "running", "done", "12 14\n"], "\(cpp)")
            let py = try await harness.readStatuses("py")
            #expect(py.prefix(4) == ["received", "running", "done", "HELLO DATA ['alpha', 'two words']\n"], "\(py)")
            let bad = try await harness.readStatuses("badname")
            #expect(bad.prefix(2) == ["failed", "invalid job: field 'files[0].name' must not contain '..', got '../escape'"], "\(bad)")
        }
    }

    @Test("cpu_time_ms stops a busy loop before its wall limit; a sleeper meets its wall limit; compiler_options")
    func limitsAndCompilerOptions() async throws {
        try await WorkerHarness.with(configure: { $0.judge.allowCompilerOptions = true }) { harness in
            try harness.push(try Self.payload([
                "id": "cpu", "command": #"if [ "$1" = spin ]; then while :; do :; done; else sleep 30; fi"#,
                "tests": [
                    ["name": "spin", "args": ["spin"], "limits": ["cpu_time_ms": 1000, "wall_time_ms": 20000]],
                    ["name": "sleep", "args": ["sleep"], "limits": ["cpu_time_ms": 1000, "wall_time_ms": 2000]],
                ],
            ]))
            let local = "#include <stdio.h>\nint main(void) {\n#ifdef LOCAL\n  puts(\"local\");\n#else\n  puts(\"judge\");\n#endif\n}\n"
            try harness.push(try Self.payload(["id": "opt", "language": "c", "code": local, "compiler_options": "-O2 -DLOCAL"]))
            try harness.push(try Self.payload(["id": "plugin", "language": "c", "code": local, "compiler_options": ["-fplugin=/tmp/x.so"]]))

            let cpu = WorkerHarness.result(try await harness.readStatuses("cpu"))
            #expect(Self.verdicts(cpu) == ["cpu_time_limit", "time_limit"], "\(cpu)")
            let spin = Self.cases(cpu).first ?? [:]
            #expect((spin["wall_ms"] as? Int ?? .max) < 10_000, "stopped by CPU time, well before its 20 s wall limit: \(spin)")
            #expect((spin["cpu_ms"] as? Int ?? 0) >= 1000)
            let sleeper = Self.cases(cpu).last ?? [:]
            #expect((sleeper["cpu_ms"] as? Int ?? .max) < 1000, "\(sleeper)")
            #expect((cpu["limits"] as? [String: Any])?["cpu_time_ms"] == nil, "the job itself asked for no CPU limit")

            let honoured = try await harness.readStatuses("opt")
            #expect(honoured.prefix(4) == ["received", "running", "done", "local\n"], "\(honoured)")
            let refused = try await harness.readStatuses("plugin")
            #expect(refused.first == "failed")
            #expect(refused.dropFirst().first?.hasPrefix("invalid job: field 'compiler_options' has '-fplugin=/tmp/x.so'") == true)
        }
        try await WorkerHarness.with { harness in
            try harness.push(try Self.payload(["id": "off", "language": "c", "code": "int main(){}", "compiler_options": "-O2"]))
            let refused = try await harness.readStatuses("off")
            #expect(refused.prefix(2) == ["failed", "invalid job: field 'compiler_options' is not allowed on this worker"])
            #expect(harness.driver.total == 0)
        }
    }
}
