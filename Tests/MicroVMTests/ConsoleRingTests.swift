import MicroVM
import Testing

@Suite struct ConsoleRingTests {
    @Test func keepsOnlyTheMostRecentBytes() {
        let ring = ConsoleRing(capacity: 8)
        ring.append("abc")
        #expect(ring.snapshot() == Array("abc".utf8))
        ring.append("defghij")
        #expect(String(decoding: ring.snapshot(), as: UTF8.self) == "cdefghij")
        ring.append("0123456789xyz")
        #expect(String(decoding: ring.snapshot(), as: UTF8.self) == "56789xyz")
        #expect(ring.totalBytes == 3 + 7 + 13)
    }

    @Test func wrapsAroundManySmallWrites() {
        let ring = ConsoleRing(capacity: 10)
        var all = ""
        for i in 0..<1000 {
            let piece = "\(i % 7)"
            ring.append(piece)
            all += piece
        }
        #expect(String(decoding: ring.snapshot(), as: UTF8.self) == String(all.suffix(10)))
    }

    @Test func tailStartsAtALineBoundary() {
        let ring = ConsoleRing(capacity: 1 << 16)
        for i in 0..<100 { ring.append("line \(i)\n") }
        let tail = ring.tail(maxBytes: 40)
        #expect(tail.hasPrefix("line "))
        #expect(tail.hasSuffix("line 99\n"))
        #expect(tail.utf8.count <= 40)
    }
}
