import Testing

@testable import JobQueue

@Suite("The one JSON reader of a payload")
struct JobJSONReaderTests {
    func read(_ text: String) throws -> JobJSONReader.Document {
        try JobJSONReader.read(Array(text.utf8))
    }

    func syntaxError(_ bytes: [UInt8]) -> JobJSONReader.SyntaxError? {
        do {
            _ = try JobJSONReader.read(bytes)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsEveryJSONType() throws {
        let document = try read(#" {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","i":-12,"d":1.5e3,"t":true,"f":false,"n":null,"a":[1,[]],"o":{}} "#)
        #expect(document.duplicateKeys.isEmpty)
        #expect(document.tooDeep == nil)
        #expect(document.value == .object([
            "s": .string("a\"\\/\u{08}\u{0C}\n\r\té😀"), "i": .int(-12), "d": .double(1500), "t": .bool(true),
            "f": .bool(false), "n": .null, "a": .array([.int(1), .array([])]), "o": .object([:]),
        ]))
    }

    @Test func duplicateKeysAreReportedAtEveryDepthAndTheFirstIsKept() throws {
        let document = try read(#"{"id":"a","id":"b","limits":{"memory_mb":1,"memory_mb":2},"x":[{"k":1,"k":2}]}"#)
        #expect(document.duplicateKeys == ["id", "limits.memory_mb", "x.k"])
        guard case .object(let fields) = document.value else { Issue.record("not an object"); return }
        #expect(fields["id"] == .string("a"))
    }

    /// Keys equal after unescaping are the same key: `"i\u0064"` is `"id"`.
    @Test func escapedSpellingsOfAKeyAreTheSameKey() throws {
        #expect(try read(#"{"id":"a","i\u0064":"b"}"#).duplicateKeys == ["id"])
    }

    @Test func deepNestingIsSkippedWithoutRecursionAndKeepsTheID() throws {
        let depth = 100_000
        let text = #"{"id":"deep","stdin":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        let document = try read(text)
        #expect(document.tooDeep == "stdin")
        guard case .object(let fields) = document.value else { Issue.record("not an object"); return }
        #expect(fields["id"] == .string("deep"))
    }

    @Test func nestingUpToTheLimitIsRead() throws {
        let depth = JobJSONReader.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(try read(text).tooDeep == nil)
        #expect(try read("[" + text + "]").tooDeep == "(payload)")
    }

    @Test(arguments: [
        (#"{"a":1,}"#, "expected a string key"),
        (#"{"a" 1}"#, "expected ':'"),
        (#"[1 2]"#, "expected ',' or ']'"),
        (#"{"a":01}"#, "leading zero"),
        (#"{"a":1.}"#, "expected a digit after '.'"),
        (#"{"a":-}"#, "expected a digit"),
        (#"{"a":1e}"#, "exponent"),
        (#"{"a":tru}"#, "invalid literal"),
        (#"{"a":"\x"}"#, "invalid escape"),
        (#"{"a":"\ud800"}"#, "lone high surrogate"),
        (#"{"a":"\udc00"}"#, "lone low surrogate"),
        (#"{"a":"\ud800\u0041"}"#, "high surrogate not followed by a low one"),
        (#"{"a":"\u12g4"}"#, "invalid hex digit"),
        (#"{"a":"x"#, "unterminated string"),
        (#"{"a":1} {}"#, "unexpected data after the JSON value"),
        ("", "unexpected end of input"),
        (#"{"a":'x'}"#, "unexpected character"),
        (#"{"a":1]"#, "expected ',' or '}'"),
    ])
    func syntaxErrorsSayWhatAndWhere(text: String, message: String) {
        let error = syntaxError(Array(text.utf8))
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func rawControlCharactersAndInvalidUTF8AreRefused() {
        #expect(syntaxError(Array(#"{"a":"x"#.utf8) + [0x01] + Array(#""}"#.utf8))?.message.contains("U+0001") == true)
        let invalid = syntaxError(Array(#"{"a":"é"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8))
        #expect(invalid?.message == "not valid UTF-8")
        #expect(invalid?.offset == 8)
    }

    @Test func hugeNumbersAreNotIntegers() throws {
        let document = try read(#"{"a":99999999999999999999999,"b":1e400,"c":-0}"#)
        #expect(document.value == .object(["a": .double(1e23), "b": .double(.infinity), "c": .int(0)]))
    }

    @Test func mismatchedBracketsInsideASkippedValueAreRefused() {
        let text = #"{"a":"# + String(repeating: "[", count: 100) + "}"
        #expect(syntaxError(Array(text.utf8))?.message.contains("mismatched") == true)
    }
}
