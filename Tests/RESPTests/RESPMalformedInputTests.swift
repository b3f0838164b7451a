import NIOCore
import RESP
import Testing

@Suite struct RESPMalformedInputTests {
    struct Case: Sendable, CustomStringConvertible {
        let input: String
        let code: RESPParsingError.Code
        var limits: RESPDecodingLimits = .default
        var description: String { input.debugDescription }
    }

    static let tight = RESPDecodingLimits(maxDepth: 3, maxBulkLength: 16, maxAggregateCount: 4, maxLineLength: 8)

    static let cases: [Case] = [
        Case(input: "?foo\r\n", code: .invalidLeadingByte),
        Case(input: "hello\r\n", code: .invalidLeadingByte),
        Case(input: "\r\n", code: .invalidLeadingByte),
        Case(input: "+OK\rX", code: .invalidLineTerminator),
        Case(input: "+O\nK\r\n", code: .invalidLineTerminator),
        Case(input: ":12a\r\n", code: .invalidInteger),
        Case(input: ":\r\n", code: .invalidInteger),
        Case(input: ":-\r\n", code: .invalidInteger),
        Case(input: ":99999999999999999999\r\n", code: .invalidInteger),
        Case(input: ":9223372036854775808\r\n", code: .invalidInteger),
        Case(input: "$-2\r\n", code: .invalidLength),
        Case(input: "$abc\r\n", code: .invalidLength),
        Case(input: "$\r\n", code: .invalidLength),
        Case(input: "$+3\r\nabc\r\n", code: .invalidLength),
        Case(input: "$123456789012345678901234\r\n", code: .invalidLength),
        Case(input: "$3\r\nabcXY", code: .invalidLineTerminator),
        Case(input: "$3\r\nabc\rX", code: .invalidLineTerminator),
        Case(input: "*-2\r\n", code: .invalidLength),
        Case(input: "%-1\r\n", code: .invalidLength),
        Case(input: "!-1\r\n", code: .invalidLength),
        Case(input: "#x\r\n", code: .invalidBoolean),
        Case(input: "#tt\r\n", code: .invalidBoolean),
        Case(input: ",1.2.x\r\n", code: .invalidDouble),
        Case(input: ",\r\n", code: .invalidDouble),
        Case(input: ",infinity\r\n", code: .invalidDouble),
        Case(input: "(12a\r\n", code: .invalidBigNumber),
        Case(input: "(-\r\n", code: .invalidBigNumber),
        Case(input: "=2\r\nab\r\n", code: .invalidVerbatimString),
        Case(input: "=5\r\ntxtxx\r\n", code: .invalidVerbatimString),
        Case(input: "_x\r\n", code: .invalidNull),
        Case(input: "$?\r\n;4\r\nHell\r\n;0\r\n", code: .unsupportedStreamedType),
        Case(input: "*?\r\n", code: .unsupportedStreamedType),
        Case(input: "*2\r\n:1\r\n?\r\n", code: .invalidLeadingByte),
        Case(input: "$17\r\n", code: .bulkStringTooLarge, limits: tight),
        Case(input: "$536870913\r\n", code: .bulkStringTooLarge),
        Case(input: "*5\r\n", code: .tooManyElements, limits: tight),
        Case(input: "%3\r\n", code: .tooManyElements, limits: tight),
        Case(input: "*9223372036854775807\r\n", code: .tooManyElements),
        Case(input: "%4611686018427387904\r\n", code: .tooManyElements),
        Case(input: "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", code: .nestingTooDeep, limits: tight),
        Case(input: String(repeating: "*1\r\n", count: 100_000), code: .nestingTooDeep),
        Case(input: "|1\r\n+a\r\n|1\r\n+b\r\n|1\r\n+c\r\n|1\r\n+d\r\n:1\r\n", code: .nestingTooDeep, limits: tight),
        Case(input: "+123456789", code: .lineTooLong, limits: tight),
        Case(input: "-" + String(repeating: "x", count: 1024 * 1024 + 1), code: .lineTooLong),
    ]

    @Test(arguments: cases)
    func malformedInputFailsWithCode(_ testCase: Case) {
        var buffer = ByteBuffer(string: testCase.input)
        do {
            let token = try RESPToken(consuming: &buffer, limits: testCase.limits)
            Issue.record("expected \(testCase.code), got \(String(describing: token))")
        } catch {
            #expect(error.code == testCase.code, "\(error)")
        }
    }

    /// The same inputs fed one byte at a time must fail the same way (early, not by waiting forever).
    @Test(arguments: cases.filter { $0.input.utf8.count < 200 })
    func malformedInputFailsBytewise(_ testCase: Case) {
        let chunks = RESPSamples.bytewise(ByteBuffer(string: testCase.input))
        do {
            let tokens = try RESPSamples.decodeThroughChannel(chunks, limits: testCase.limits)
            Issue.record("expected \(testCase.code), got \(tokens)")
        } catch let error as RESPParsingError {
            #expect(error.code == testCase.code, "\(error)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func atLeastTwentyMalformedCases() {
        #expect(Self.cases.count >= 20)
        #expect(Set(Self.cases.map(\.code.description)).count >= 14, "every error code is exercised")
    }
}
