import Testing

@testable import Judging

/// Judge mode's comparison modes and file name rules: pure, no VM (the guest agent runs the same code).
@Suite("Judging: comparisons and work file names")
struct ComparisonTests {
    struct Pair: Sendable, CustomTestStringConvertible {
        var mode: Comparison
        var expected: String
        var actual: String
        var accepted: Bool
        var testDescription: String { "\(mode.name): \(accepted ? "accepts" : "refuses") \(actual.debugDescription)" }
    }

    /// Each mode on outputs that differ only in what it ignores, and on outputs that differ in more.
    static let pairs: [Pair] = [
        Pair(mode: .exact, expected: "1 2\n", actual: "1 2\n", accepted: true),
        Pair(mode: .exact, expected: "1 2\n", actual: "1 2 \n", accepted: false),
        Pair(mode: .exact, expected: "1 2\n", actual: "1 2", accepted: false),
        Pair(mode: .trimmed, expected: "1 2\n3\n", actual: "1 2  \r\n3\t\n\n\n", accepted: true),
        Pair(mode: .trimmed, expected: "1 2\n3\n", actual: "1 2\n3", accepted: true),
        Pair(mode: .trimmed, expected: "1 2\n3\n", actual: " 1 2\n3\n", accepted: false),
        Pair(mode: .trimmed, expected: "1 2\n3\n", actual: "1  2\n3\n", accepted: false),
        Pair(mode: .trimmed, expected: "1\n\n2\n", actual: "1\n2\n", accepted: false),
        Pair(mode: .tokens, expected: "1 2\n3\n", actual: "  1\n\n2\t3", accepted: true),
        Pair(mode: .tokens, expected: "1 2\n3\n", actual: "1 2 3 4", accepted: false),
        Pair(mode: .tokens, expected: "1 2\n3\n", actual: "12 3", accepted: false),
        Pair(mode: .float(epsilon: 1e-6), expected: "0.3333333 x\n", actual: "0.33333334 x", accepted: true),
        Pair(mode: .float(epsilon: 1e-6), expected: "1000000000\n", actual: "1000000500", accepted: true),
        Pair(mode: .float(epsilon: 1e-6), expected: "0.3333333\n", actual: "0.3334", accepted: false),
        Pair(mode: .float(epsilon: 1e-6), expected: "1.0 yes\n", actual: "1.0 no", accepted: false),
        Pair(mode: .float(epsilon: 1e-6), expected: "nan\n", actual: "nan", accepted: true),
        Pair(mode: .float(epsilon: 1e-6), expected: "inf\n", actual: "1e308", accepted: false),
        Pair(mode: .float(epsilon: 0), expected: "0.30000000000000004", actual: "0.3", accepted: false),
    ]

    @Test(arguments: pairs)
    func mode(_ pair: Pair) {
        #expect(pair.mode.accepts(expected: Array(pair.expected.utf8), actual: Array(pair.actual.utf8)) == pair.accepted)
    }

    @Test("spellings read back as the same mode; anything else is refused")
    func spellings() {
        for mode in [Comparison.exact, .trimmed, .tokens, .float(epsilon: 1e-6), .float(epsilon: 0.5)] {
            #expect(Comparison(parsing: mode.name) == mode)
        }
        #expect(Comparison(parsing: "float:1e-9") == .float(epsilon: 1e-9))
        for bad in ["", "Exact", "float", "float:", "float:-1", "float:nan", "float:inf", "float:x", "lines"] {
            #expect(Comparison(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("every file name that could leave the directory, or mean another, is refused")
    func fileNames() {
        for good in ["a.txt", "src/util.h", "data/in/1.txt", ".hidden", "a..b"] {
            #expect(WorkFileRules.problem(name: good) == nil, "\(good)")
        }
        let bad: [(String, String)] = [
            ("", "must not be empty"), ("/etc/passwd", "must be a relative path, got '/etc/passwd'"),
            ("..", "must not contain '..', got '..'"), ("a/../../b", "must not contain '..', got 'a/../../b'"),
            ("./a", "must not contain '.' or empty path components, got './a'"),
            ("a//b", "must not contain '.' or empty path components, got 'a//b'"),
            ("a/", "must not contain '.' or empty path components, got 'a/'"),
            ("a\nb", "must not contain control characters"), ("a\u{0}b", "must not contain control characters"),
            (String(repeating: "x", count: 256), "must be at most 255 bytes"),
            ("a/b/c/d/e/f/g/h/i", "must have at most 8 path components"),
        ]
        for (name, problem) in bad { #expect(WorkFileRules.problem(name: name) == problem, "\(name.debugDescription)") }
        #expect(WorkFileRules.clash(names: ["a", "b", "a"]) == "a")
        #expect(WorkFileRules.clash(names: ["a", "a/b"]) == "a/b")
        #expect(WorkFileRules.clash(names: ["a/b", "a"]) == "a")
        #expect(WorkFileRules.clash(names: ["a/b", "a/c", "b"]) == nil)
    }
}
