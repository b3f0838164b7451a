import AgentProtocol
import Testing

@testable import JobQueue

@Suite("Job parsing")
struct JobParserTests {
    let parser = JobParser()

    func reject(_ payload: String, parser: JobParser = JobParser()) throws -> InvalidJob {
        switch parser.parse(payload) {
        case .success(let job): throw ParserTestFailure(message: "expected a rejection, got \(job)")
        case .failure(let error): return error
        }
    }

    @Test func seedJobParses() throws {
        let job = try parser.parse(#"{"id":"666","command":"uname -a"}"#).get()
        #expect(job == JobRequest(id: "666", workload: .shell(command: "uname -a")))
    }

    @Test func programWithAllOptionalFields() throws {
        let payload = """
            {"id":"p1","language":"python","code":"print(input())","stdin":"hi\\n","timeout_ms":5000,
             "limits":{"wall_time_ms":2000,"memory_mb":128,"processes":16,"output_bytes":4096},"network":true,"extra":1}
            """
        let job = try parser.parse(payload).get()
        #expect(job.workload == .program(language: .python, source: "print(input())"))
        #expect(job.stdin == Array("hi\n".utf8))
        #expect(job.timeoutMilliseconds == 5000)
        #expect(job.limits == .init(wallTimeMilliseconds: 2000, memoryBytes: 128 << 20, processes: 16, outputBytes: 4096))
        #expect(job.network)
    }

    @Test func variantIsAnAliasOfLanguage() throws {
        let job = try parser.parse(#"{"id":"v","variant":"cpp","code":"int main(){}"}"#).get()
        #expect(job.workload == .program(language: .cpp, source: "int main(){}"))
    }

    @Test(arguments: [("python3", Language.python), ("C++", .cpp), ("c", .c), ("bash", .bash)])
    func languageAliases(name: String, language: Language) throws {
        let job = try parser.parse(#"{"id":"a","language":"\#(name)","code":"x"}"#).get()
        #expect(job.workload == .program(language: language, source: "x"))
    }

    @Test func memoryBytesAndNullsAreAccepted() throws {
        let job = try parser.parse(#"{"id":"m","command":"true","stdin":null,"limits":{"memory_bytes":1000.0}}"#).get()
        #expect(job.limits.memoryBytes == 1000)
        #expect(job.stdin.isEmpty)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var payload: String
        var code: InvalidJob.Code
        var id: String?
        var reason: String
        var testDescription: String { reason }
    }

    static let cases: [Case] = [
        Case(payload: "not json {", code: .notJSON, id: nil, reason: "invalid job: payload is not valid JSON"),
        Case(payload: "[1,2]", code: .notObject, id: nil, reason: "invalid job: payload must be a JSON object, got array"),
        Case(payload: #""666""#, code: .notObject, id: nil, reason: "invalid job: payload must be a JSON object, got string"),
        Case(payload: #"{"command":"ls"}"#, code: .missingID, id: nil, reason: "invalid job: field 'id' is missing"),
        Case(payload: #"{"id":666,"command":"ls"}"#, code: .invalidID, id: nil,
             reason: "invalid job: field 'id' must be a string, got number"),
        Case(payload: #"{"id":"","command":"ls"}"#, code: .invalidID, id: nil, reason: "invalid job: field 'id' must not be empty"),
        Case(payload: #"{"id":"\#(String(repeating: "x", count: 257))","command":"ls"}"#, code: .invalidID, id: nil,
             reason: "invalid job: field 'id' is 257 bytes long, the maximum is 256"),
        Case(payload: #"{"id":"a\nb","command":"ls"}"#, code: .invalidID, id: nil,
             reason: "invalid job: field 'id' must not contain control characters"),
        Case(payload: #"{"id":"a\u0085b","command":"ls"}"#, code: .invalidID, id: nil,
             reason: "invalid job: field 'id' must not contain control characters"),
        Case(payload: #"{"id":"j","language":"cobol","code":"x"}"#, code: .unknownLanguage, id: "j",
             reason: "invalid job: field 'language' has unknown language 'cobol' (known: python, c, cpp, bash)"),
        Case(payload: #"{"id":"j","variant":"rust","code":"x"}"#, code: .unknownLanguage, id: "j",
             reason: "invalid job: field 'variant' has unknown language 'rust' (known: python, c, cpp, bash)"),
        Case(payload: #"{"id":"j","command":"ls","language":"c","code":"x"}"#, code: .conflictingWorkload, id: "j",
             reason: "invalid job: fields 'command' and 'code' are mutually exclusive"),
        Case(payload: #"{"id":"j"}"#, code: .missingWorkload, id: "j",
             reason: "invalid job: one of the fields 'command' or 'code' is required"),
        Case(payload: #"{"id":"j","code":"x"}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'language' is required with 'code'"),
        Case(payload: #"{"id":"j","command":42}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'command' must be a string, got number"),
        Case(payload: #"{"id":"j","command":""}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'command' must not be empty"),
        Case(payload: #"{"id":"j","language":"c","code":["x"]}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'code' must be a string, got array"),
        Case(payload: #"{"id":"j","language":3,"code":"x"}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'language' must be a string, got number"),
        Case(payload: #"{"id":"j","command":"ls","stdin":{}}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'stdin' must be a string, got object"),
        Case(payload: #"{"id":"j","command":"ls","timeout_ms":"5s"}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'timeout_ms' must be a positive integer, got string"),
        Case(payload: #"{"id":"j","command":"ls","timeout_ms":0}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'timeout_ms' must be a positive integer, got 0"),
        Case(payload: #"{"id":"j","command":"ls","timeout_ms":1.5}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'timeout_ms' must be a positive integer, got 1.5"),
        Case(payload: #"{"id":"j","command":"ls","network":"yes"}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'network' must be a boolean, got string"),
        Case(payload: #"{"id":"j","command":"ls","network":1}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'network' must be a boolean, got number"),
        Case(payload: #"{"id":"j","command":"ls","limits":[]}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'limits' must be an object, got array"),
        Case(payload: #"{"id":"j","command":"ls","limits":{"memory_mb":-5}}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'limits.memory_mb' must be a positive integer, got -5"),
        Case(payload: #"{"id":"j","command":"ls","limits":{"processes":true}}"#, code: .invalidField, id: "j",
             reason: "invalid job: field 'limits.processes' must be a positive integer, got boolean"),
        Case(payload: #"{"id":"j","command":"ls","limits":{"memory_mb":1,"memory_bytes":1}}"#, code: .invalidField, id: "j",
             reason: "invalid job: fields 'limits.memory_mb' and 'limits.memory_bytes' are mutually exclusive"),
        Case(payload: #"{"id":"j","language":"c","variant":"cpp","code":"x"}"#, code: .invalidField, id: "j",
             reason: "invalid job: fields 'language' and 'variant' disagree ('c' vs 'cpp')"),
    ]

    @Test(arguments: cases)
    func rejectsWithPreciseReason(_ testCase: Case) throws {
        let error = try reject(testCase.payload)
        #expect(error.reason == testCase.reason)
        #expect(error.code == testCase.code)
        #expect(error.id == testCase.id)
        #expect(error.rawPrefix == testCase.payload)
    }

    @Test func oversizedPayloadStillNamesItsID() throws {
        let small = JobParser(maximumPayloadBytes: 64)
        let payload = #"{"id":"big","command":"\#(String(repeating: "x", count: 100))"}"#
        let error = try reject(payload, parser: small)
        #expect(error.code == .payloadTooLarge)
        #expect(error.id == "big")
        #expect(error.reason == "invalid job: payload is \(payload.utf8.count) bytes, the maximum is 64")
    }

    @Test func oversizedGarbageHasNoID() throws {
        let error = try reject(String(repeating: "z", count: 2048), parser: JobParser(maximumPayloadBytes: 1024))
        #expect(error.code == .payloadTooLarge)
        #expect(error.id == nil)
        #expect(error.rawPrefix.utf8.count == JobParser.rawPrefixBytes)
        #expect(error.payloadBytes == 2048)
    }

    @Test func defaultMaximumIsOneMebibyte() {
        #expect(JobParser().maximumPayloadBytes == 1 << 20)
        let payload = #"{"id":"j","command":"\#(String(repeating: "x", count: 1 << 20))"}"#
        guard case .failure(let error) = parser.parse(payload) else {
            Issue.record("a payload over 1 MiB was accepted")
            return
        }
        #expect(error.code == .payloadTooLarge)
    }
}

struct ParserTestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
