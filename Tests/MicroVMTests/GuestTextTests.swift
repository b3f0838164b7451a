import Testing

@testable import MicroVM

/// Guest text quoted in host errors is bounded and cannot carry control characters (escape sequences,
/// forged log lines): the agent channel fuzz saw 60 KB messages with terminal escapes before this.
@Suite("Guest text in host messages")
struct GuestTextTests {
    @Test func controlCharactersAreEscaped() {
        #expect(GuestText.quoted("bad\u{1B}[2Jline\nforged: ok\u{85}") == "bad\\u{1b}[2Jline\\u{a}forged: ok\\u{85}")
    }

    @Test func longTextIsCut() {
        let quoted = GuestText.quoted(String(repeating: "é", count: 60_000))
        #expect(quoted.hasPrefix(String(repeating: "é", count: GuestText.maximumScalars)))
        #expect(quoted.hasSuffix("… (\(60_000 - GuestText.maximumScalars) more characters)"))
        #expect(quoted.unicodeScalars.count < GuestText.maximumScalars + 40)
    }

    @Test func ordinaryTextIsUnchanged() {
        #expect(GuestText.quoted("request job-1: field 'limits.processes' must be at least 1")
            == "request job-1: field 'limits.processes' must be at least 1")
    }
}
