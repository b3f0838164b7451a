import Testing

@testable import QEMUDriver

/// QMP's stream as the driver reads it: replies, errors and events told apart, lines bounded.
@Suite struct QMPLinesTests {
    @Test func eventsAreNamedAndRepliesAreNot() throws {
        #expect(QMPLines.eventName(#"{"timestamp": {"seconds": 1796568331, "microseconds": 885095}, "event": "RESUME"}"#) == "RESUME")
        #expect(QMPLines.eventName(#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#) == "STOP")
        #expect(QMPLines.eventName(#"{"return": {"status": "running", "running": true}}"#) == nil)
        #expect(QMPLines.eventName(#"{"error": {"class": "GenericError", "desc": "no"}}"#) == nil)
        #expect(QMPLines.eventName(#"{"QMP": {"version": {}}}"#) == nil, "the greeting is no event")
        #expect(QMPLines.eventName("not json") == nil)
        #expect(try QMPLines.isReply(#"{"return": {}}"#, to: "cont"))
        #expect(throws: QMPClient.Failure.self) { try QMPLines.isReply(#"{"error": {"desc": "no"}}"#, to: "cont") }
        #expect(try !QMPLines.isReply(#"{"timestamp": {}, "event": "RESUME"}"#, to: "cont"))
    }

    @Test func linesAreCutAtNewlinesAndBounded() throws {
        var lines = QMPLines()
        lines.append(Array("{\"a\": 1}\r\n\n{\"b\"".utf8))
        #expect(try lines.next() == "{\"a\": 1}")
        #expect(try lines.next() == nil, "the second line is not complete yet")
        lines.append(Array(": 2}\n".utf8))
        #expect(try lines.next() == "{\"b\": 2}")
        lines.append([UInt8](repeating: UInt8(ascii: "x"), count: QMPLines.maximumLineBytes))
        #expect(throws: QMPClient.Failure.self) { try lines.next() }
    }
}
