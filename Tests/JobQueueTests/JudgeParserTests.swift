import JobQueue
import Judging
import Testing

/// Judge mode's fields in the one parser: every bad value gets its own `invalid job:` reason.
@Suite("Job parser: judge mode fields")
struct JudgeParserTests {
    struct Refused: Sendable, CustomTestStringConvertible {
        var name: String
        /// Fields added to `{"id":"j","language":"python","code":"print(1)"`.
        var fields: String
        var reason: String
        var testDescription: String { name }
    }

    static let refused: [Refused] = [
        Refused(name: "files not a list", fields: #""files":{}"#, reason: "field 'files' must be an array, got object"),
        Refused(name: "file not an object", fields: #""files":["a"]"#, reason: "field 'files[0]' must be an object, got string"),
        Refused(name: "file without name", fields: #""files":[{"content":""}]"#, reason: "field 'files[0].name' is missing"),
        Refused(name: "empty name", fields: #""files":[{"name":"","content":""}]"#, reason: "field 'files[0].name' must not be empty"),
        Refused(
            name: "absolute name", fields: #""files":[{"name":"/etc/x","content":""}]"#,
            reason: "field 'files[0].name' must be a relative path, got '/etc/x'"),
        Refused(
            name: "dot-dot name", fields: #""files":[{"name":"a/../../x","content":""}]"#,
            reason: "field 'files[0].name' must not contain '..', got 'a/../../x'"),
        Refused(
            name: "dot name", fields: #""files":[{"name":"./x","content":""}]"#,
            reason: "field 'files[0].name' must not contain '.' or empty path components, got './x'"),
        Refused(
            name: "control character", fields: #""files":[{"name":"a\tb","content":""}]"#,
            reason: "field 'files[0].name' must not contain control characters"),
        Refused(
            name: "duplicate names", fields: #""files":[{"name":"a","content":""},{"name":"a","content":"x"}]"#,
            reason: "field 'files' names 'a' twice (or as a file and a directory)"),
        Refused(
            name: "file and directory", fields: #""files":[{"name":"a","content":""},{"name":"a/b","content":"x"}]"#,
            reason: "field 'files' names 'a/b' twice (or as a file and a directory)"),
        Refused(name: "no content", fields: #""files":[{"name":"a"}]"#, reason: "field 'files[0].content' is missing"),
        Refused(
            name: "content not a string", fields: #""files":[{"name":"a","content":1}]"#,
            reason: "field 'files[0].content' must be a string, got number"),
        Refused(
            name: "unknown encoding", fields: #""files":[{"name":"a","content":"","encoding":"hex"}]"#,
            reason: "field 'files[0].encoding' must be 'utf8' or 'base64', got 'hex'"),
        Refused(
            name: "bad base64", fields: #""files":[{"name":"a","content":"!!!","encoding":"base64"}]"#,
            reason: "field 'files[0].content' is not valid base64"),
        Refused(
            name: "101 files",
            fields: "\"files\":[" + (0...100).map { #"{"name":"f\#($0)","content":""}"# }.joined(separator: ",") + "]",
            reason: "field 'files' has 101 entries, the maximum is 100"),
        Refused(
            name: "entry next to code", fields: #""entry":"a.py","files":[{"name":"a.py","content":""}]"#,
            reason: "field 'entry' needs 'files' and 'language', without 'code' or 'command'"),
        Refused(name: "args not a list", fields: #""args":"a b""#, reason: "field 'args' must be an array, got string"),
        Refused(name: "args element", fields: #""args":["a",2]"#, reason: "field 'args[1]' must be a string, got number"),
        Refused(
            name: "compiler options number", fields: #""compiler_options":3"#,
            reason: "field 'compiler_options' must be a string or an array of strings, got number"),
        Refused(
            name: "compiler options element", fields: #""compiler_options":["-O2",null]"#,
            reason: "field 'compiler_options[1]' must be a string, got null"),
        Refused(name: "tests not a list", fields: #""tests":{}"#, reason: "field 'tests' must be an array, got object"),
        Refused(name: "tests empty", fields: #""tests":[]"#, reason: "field 'tests' must not be empty"),
        Refused(name: "test not an object", fields: #""tests":[1]"#, reason: "field 'tests[0]' must be an object, got number"),
        Refused(name: "test stdin", fields: #""tests":[{"stdin":5}]"#, reason: "field 'tests[0].stdin' must be a string, got number"),
        Refused(
            name: "test expected output", fields: #""tests":[{},{"expected_output":[]}]"#,
            reason: "field 'tests[1].expected_output' must be a string, got array"),
        Refused(name: "test args", fields: #""tests":[{"args":[true]}]"#, reason: "field 'tests[0].args[0]' must be a string, got boolean"),
        Refused(
            name: "test limits", fields: #""tests":[{"limits":{"cpu_time_ms":0}}]"#,
            reason: "field 'tests[0].limits.cpu_time_ms' must be a positive integer, got 0"),
        Refused(
            name: "test memory twice", fields: #""tests":[{"limits":{"memory_mb":64,"memory_bytes":67108864}}]"#,
            reason: "fields 'tests[0].limits.memory_mb' and 'tests[0].limits.memory_bytes' are mutually exclusive"),
        Refused(
            name: "unknown compare", fields: #""tests":[{}],"compare":"lines""#,
            reason: "field 'compare' must be one of exact, trimmed, tokens, float:<epsilon>, got 'lines'"),
        Refused(
            name: "negative epsilon", fields: #""tests":[{}],"compare":"float:-1""#,
            reason: "field 'compare' must be one of exact, trimmed, tokens, float:<epsilon>, got 'float:-1'"),
        Refused(name: "compare without tests", fields: #""compare":"exact""#, reason: "field 'compare' needs 'tests'"),
        Refused(name: "stop_on_failure without tests", fields: #""stop_on_failure":true"#, reason: "field 'stop_on_failure' needs 'tests'"),
        Refused(
            name: "stop_on_failure not a boolean", fields: #""tests":[{}],"stop_on_failure":"yes""#,
            reason: "field 'stop_on_failure' must be a boolean, got string"),
        Refused(
            name: "compare and checker", fields: #""tests":[{}],"compare":"exact","checker":{"language":"python","code":"x"}"#,
            reason: "fields 'compare' and 'checker' are mutually exclusive"),
        Refused(
            name: "checker language", fields: #""tests":[{}],"checker":{"language":"cobol","code":"x"}"#,
            reason: "field 'checker.language' has unknown language 'cobol' (known: python, c, cpp, bash)"),
        Refused(
            name: "checker without code", fields: #""tests":[{}],"checker":{"language":"python"}"#,
            reason: "field 'checker.code' is missing"),
        Refused(
            name: "checker empty code", fields: #""tests":[{}],"checker":{"language":"python","code":""}"#,
            reason: "field 'checker.code' must not be empty"),
        Refused(
            name: "cpu_time_ms", fields: #""limits":{"cpu_time_ms":-1}"#,
            reason: "field 'limits.cpu_time_ms' must be a positive integer, got -1"),
        Refused(
            name: "max_file_size_mb", fields: #""limits":{"max_file_size_mb":"1"}"#,
            reason: "field 'limits.max_file_size_mb' must be a positive integer, got string"),
        Refused(
            name: "compile_wall_time_ms", fields: #""limits":{"compile_wall_time_ms":1.5}"#,
            reason: "field 'limits.compile_wall_time_ms' must be a positive integer, got 1.5"),
        Refused(
            name: "compile_memory_mb", fields: #""limits":{"compile_memory_mb":0}"#,
            reason: "field 'limits.compile_memory_mb' must be a positive integer, got 0"),
    ]

    @Test(arguments: refused)
    func refusedWithReason(_ job: Refused) throws {
        let payload = #"{"id":"j","language":"python","code":"print(1)","# + job.fields + "}"
        guard case .failure(let invalid) = JobParser().parse(payload) else {
            Issue.record("accepted: \(payload.prefix(200))")
            return
        }
        #expect(invalid.reason == "invalid job: " + job.reason)
        #expect(invalid.id == "j")
    }

    @Test("projects: the entry point must be among the files")
    func projectEntry() throws {
        func reason(_ payload: String) -> String? {
            if case .failure(let invalid) = JobParser().parse(payload) { return invalid.reason }
            return nil
        }
        #expect(
            reason(#"{"id":"p","language":"python","files":[{"name":"util.py","content":""}]}"#)
                == "invalid job: field 'files' has no 'main.py', the entry point for python without 'code' (or name another with 'entry')")
        #expect(
            reason(#"{"id":"p","language":"c","entry":"x.c","files":[{"name":"y.c","content":""}]}"#)
                == "invalid job: field 'entry' names 'x.c', which is not in 'files'")
        #expect(
            reason(#"{"id":"p","files":[{"name":"main.py","content":""}]}"#)
                == "invalid job: one of the fields 'command' or 'code' is required")
    }

    @Test("every judge field is read, and the payload a client builds reads back as the same job")
    func roundTrip() throws {
        let payload = #"""
            {"id":"r","language":"cpp","entry":"src/main.cpp","files":[{"name":"src/main.cpp","content":"int main(){}"},
             {"name":"bin.dat","content":"AAEC/w==","encoding":"base64"}],"args":["-v","x y"],"compiler_options":"-O2  -DLOCAL",
             "tests":[{"name":"one","stdin":"1\n","expected_output":"1\n","args":["a"],"limits":{"cpu_time_ms":500,"memory_mb":32}},{}],
             "compare":"float:1e-06","stop_on_failure":true,
             "limits":{"cpu_time_ms":1000,"compile_wall_time_ms":20000,"compile_memory_mb":256,"max_file_size_mb":4}}
            """#
        let job = try JobParser().parse(payload).get()
        #expect(job.workload == .project(language: .cpp, entry: "src/main.cpp"))
        #expect(job.files == [JobFile(name: "src/main.cpp", content: Array("int main(){}".utf8)), JobFile(name: "bin.dat", content: [0, 1, 2, 255])])
        #expect(job.arguments == ["-v", "x y"])
        #expect(job.compilerOptions == ["-O2", "-DLOCAL"])
        #expect(job.limits.cpuTimeMilliseconds == 1000)
        #expect(job.limits.compileWallTimeMilliseconds == 20000)
        #expect(job.limits.compileMemoryMiB == 256)
        #expect(job.limits.maxFileSizeMiB == 4)
        let judge = try #require(job.judge)
        #expect(judge.comparison == .float(epsilon: 1e-6))
        #expect(judge.stopOnFailure)
        #expect(judge.tests.count == 2)
        #expect(judge.tests[0] == JobTestCase(
            name: "one", stdin: Array("1\n".utf8), arguments: ["a"], expectedOutput: Array("1\n".utf8),
            limits: .init(memoryBytes: 32 << 20, memoryMiB: 32, cpuTimeMilliseconds: 500)))
        #expect(judge.tests[1] == JobTestCase())
        #expect(try JobParser().parse(job.payload).get() == job)

        let checked = try JobParser().parse(#"{"id":"c","command":"cat","tests":[{"stdin":"x"}],"checker":{"language":"py","code":"exit(0)"}}"#).get()
        #expect(checked.judge?.checker == JobChecker(language: .python, code: "exit(0)"))
        #expect(try JobParser().parse(checked.payload).get() == checked)
    }

    @Test("a job without the new fields reads exactly as before")
    func plainJob() throws {
        let job = try JobParser().parse(#"{"id":"p","command":"true"}"#).get()
        #expect(job == JobRequest(id: "p", workload: .shell(command: "true")))
        #expect(job.judge == nil && job.files.isEmpty && job.arguments.isEmpty && job.compilerOptions == nil)
    }
}
