import AgentProtocol
import FoundationEssentials
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The host side of the agent channel against a hostile guest (issue 11, item 7), from a fixed seed so a
/// failure reproduces:
///
/// - over 100 000 hostile frames through the real pipeline (ByteToMessageHandler + AgentChannelDecoder +
///   AgentChannelHandler + AgentMailbox) in an EmbeddedChannel, each session compared with a reference
///   reading of the framing rules (docs/agent-protocol.md), with the bytes held by the decoder measured;
/// - a few hundred end-to-end sessions of AgentConnection (connect, vsock handshake, hello, resume, run)
///   against a hostile peer on a Unix socket, each under a watchdog.
///
/// The decoder level replays exactly from the seed; end to end, how much of a flood gets written before
/// the host hangs up depends on timing, the cases do not.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct AgentChannelFuzzTests {
    static let seed: UInt64 = 0xC0DE_BE7C_A6E7_0011

    /// Every session ends (EOF at the latest) with the messages and the end the framing rules predict;
    /// an error end maps to a VMError naming it; the decoder never holds a frame's worth or more.
    @Test func hundredThousandHostileFramesThroughTheDecoder() async throws {
        let started = ContinuousClock.now
        var generator = AgentFuzzGenerator(seed: Self.seed)
        let timerLoop = MultiThreadedEventLoopGroup.singleton.next()
        let baseline = residentBytes()
        var peakResident = baseline
        var frames = 0
        var sessions = 0
        var deliveredMessages = 0
        var ends: [String: Int] = [:]
        var mismatches: [String] = []
        var mismatchCount = 0
        var hangs = 0
        var longestErrorMessage = 0
        var peakKept = 0
        var peakOffered = 0
        var gaugeViolations: [String] = []

        while frames < 100_000 {
            let session = try generator.decoderSession()
            sessions += 1
            frames += session.frames
            let prediction = AgentFramingReference.predict(
                session.stream, awaitingHandshake: session.awaitingHandshake, limit: session.limit, capacity: AgentFuzzPipeline.capacity)

            // The EmbeddedChannel lives and dies on this thread, between two awaits.
            let mailbox = AgentMailbox(capacity: AgentFuzzPipeline.capacity)
            let gauge = try AgentFuzzPipeline.feed(session, into: mailbox, random: &generator.random)
            peakKept = max(peakKept, gauge.peakKept)
            peakOffered = max(peakOffered, gauge.peakOffered)
            if gauge.peakKept > gauge.bound {
                gaugeViolations.append("session \(sessions) (\(session.labels)): kept \(gauge.peakKept) bytes, bound \(gauge.bound)")
            }

            var observed: [AgentFuzzInbound] = []
            var closeError: (any Error)?
            var ended = false
            drain: while true {
                let outcome: AgentMailbox.Outcome
                do {
                    outcome = try await mailbox.receive(timeout: .seconds(5), on: timerLoop)
                } catch {
                    hangs += 1
                    break drain
                }
                switch outcome {
                case .inbound(.handshakeAccepted(let port)): observed.append(.handshake(port))
                case .inbound(.message(let message)): observed.append(.message(message))
                case .closed(let error):
                    closeError = error
                    ended = true
                    break drain
                }
            }
            guard ended else { continue }
            deliveredMessages += observed.count
            let end = AgentFuzzEnd.label(of: closeError)
            ends[end, default: 0] += 1

            // What a caller of AgentConnection would get for this end.
            let mapped = AgentConnection.closedError(closeError, while: "fuzzing")
            longestErrorMessage = max(longestErrorMessage, mapped.message.utf8.count)
            var problems: [String] = []
            if observed != prediction.inbound {
                problems.append("delivered \(observed.count) messages, the framing rules say \(prediction.inbound.count)")
            }
            if end != prediction.end { problems.append("ended \(end), the framing rules say \(prediction.end)") }
            if mapped.code != (closeError == nil ? .agentUnreachable : .agentProtocol) { problems.append("mapped to \(mapped.code)") }
            if !mapped.message.contains(AgentFuzzEnd.reasonText(end)) {
                problems.append("the error does not name its reason: \(mapped.message.prefix(200))")
            }
            if !problems.isEmpty {
                mismatchCount += 1
                if mismatches.count < 5 {
                    mismatches.append(
                        "session \(sessions) [\(session.labels)] handshake=\(session.awaitingHandshake) limit=\(session.limit) "
                            + "\(session.stream.count) bytes: \(problems.joined(separator: "; "))")
                }
            }
            if sessions % 256 == 0 { peakResident = max(peakResident, residentBytes()) }
        }
        peakResident = max(peakResident, residentBytes())

        let endSummary = ends.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print(
            "agent fuzz: decoder: \(frames) hostile frames in \(sessions) sessions (seed \(String(Self.seed, radix: 16))), "
                + "\(deliveredMessages) decoded and delivered; ended: \(endSummary); \(hangs) hangs; "
                + "peak bytes held by the decoder \(peakKept) (a header and the largest limit less one byte: \(AgentFrame.headerSize + AgentFuzzGenerator.largestLimit - 1)), "
                + "peak offered to it \(peakOffered); longest error message \(longestErrorMessage) bytes; "
                + "resident memory growth \((peakResident - baseline) >> 20) MiB; \(Int((ContinuousClock.now - started) / .milliseconds(1))) ms")

        #expect(frames >= 100_000)
        #expect(hangs == 0, "sessions whose mailbox never closed")
        #expect(mismatchCount == 0, "\(mismatchCount) sessions differ: \(mismatches.joined(separator: "\n"))")
        #expect(gaugeViolations.isEmpty, "\(gaugeViolations.prefix(5).joined(separator: "\n"))")
        // Every kind of end is reached, so none of the checks above is vacuous.
        for kind in ["eof", "bad_magic", "unsupported_version", "too_large", "invalid_payload", "handshake", "queue_overflow"] {
            #expect(ends[kind, default: 0] >= 100, "only \(ends[kind, default: 0]) sessions ended \(kind)")
        }
        // A guest announcing gigabytes got its header read, not its payload buffered.
        #expect(peakKept < AgentFrame.headerSize + AgentFuzzGenerator.largestLimit)
        #expect(peakResident - baseline < 256 << 20)
    }

    /// AgentConnection against a hostile peer: every session ends with a VMError naming its reason, of the
    /// kind the case calls for, well within the watchdog; no result is ever handed out for another request.
    @Test func hostileAgentSessionsEndWithAReason() async throws {
        let started = ContinuousClock.now
        let directory = try TemporaryDirectory(prefix: "cbfz")
        let peerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test.agent-fuzz")
        var generator = AgentFuzzGenerator(seed: Self.seed ^ 0xE2E)
        let cases = try (0..<AgentFuzzEndToEnd.sessionCount).map { try generator.endToEndCase(index: $0) }
        let stats = AgentFuzzPeerStats()
        let baseline = residentBytes()

        @Sendable func session(_ index: Int) async throws -> AgentFuzzSessionReport {
            let path = directory.file("s\(index).sock")
            let peer = try await AgentFuzzPeer.start(at: path, script: cases[index].script, group: peerGroup, stats: stats)
            var report = await AgentFuzzEndToEnd.run(cases[index], index: index, path: path, logger: logger)
            await peer.stop()
            report.resident = residentBytes()
            return report
        }
        let reports: [AgentFuzzSessionReport]
        do {
            reports = try await withThrowingTaskGroup(of: AgentFuzzSessionReport.self) { group in
                var reports: [AgentFuzzSessionReport] = []
                var next = 0
                while next < cases.count || reports.count < cases.count {
                    while next < cases.count && next - reports.count < AgentFuzzEndToEnd.concurrency {
                        let index = next
                        group.addTask { try await session(index) }
                        next += 1
                    }
                    guard let report = try await group.next() else { break }
                    reports.append(report)
                }
                return reports
            }
        } catch {
            try? await peerGroup.shutdownGracefully()
            directory.remove()
            throw error
        }
        try await peerGroup.shutdownGracefully()
        directory.remove()

        var ends: [String: Int] = [:]
        var wrongKind: [String] = []
        var unnamed: [String] = []
        var notVMError: [String] = []
        var neverFailed: [String] = []
        var hung: [String] = []
        var foreignResults: [String] = []
        var results = 0
        var longest = Duration.zero
        var longestErrorMessage = 0
        var peak = baseline
        for report in reports {
            peak = max(peak, report.resident)
            results += report.results
            foreignResults += report.foreignResults
            longest = max(longest, report.duration)
            switch report.end {
            case .hung:
                hung.append(report.label)
            case .finishedWithoutError:
                neverFailed.append(report.label)
            case .otherError(let description):
                notVMError.append("\(report.label): \(description)")
            case .vmError(let error):
                ends[AgentFuzzEnd.label(of: error), default: 0] += 1
                longestErrorMessage = max(longestErrorMessage, error.message.utf8.count)
                if error.message.allSatisfy(\.isWhitespace) { unnamed.append(report.label) }
                if !report.expected.isEmpty && !report.expected.contains(error.code.rawValue) {
                    wrongKind.append("\(report.label): \(error.code) \(error.message.prefix(160)) (expected \(report.expected.sorted()))")
                } else if let reason = report.reason, AgentFuzzEnd.label(of: error) != reason {
                    wrongKind.append("\(report.label): \(AgentFuzzEnd.label(of: error)): \(error.message.prefix(160)) (expected \(reason))")
                }
            }
        }
        let endSummary = ends.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print(
            "agent fuzz: end-to-end: \(reports.count) sessions, peer wrote \(stats.frames) frames and \(stats.bytes >> 10) KiB "
                + "(\(stats.floodBytes >> 10) KiB of it floods); \(results) results accepted; ended: \(endSummary); "
                + "\(hung.count) hangs; longest session \(Int(longest / .milliseconds(1))) ms; "
                + "longest error message \(longestErrorMessage) bytes; resident memory growth \((peak - baseline) >> 20) MiB; "
                + "\(Int((ContinuousClock.now - started) / .milliseconds(1))) ms")

        #expect(reports.count == cases.count)
        #expect(hung.isEmpty, "sessions still running after \(AgentFuzzEndToEnd.watchdog): \(hung.prefix(10))")
        #expect(neverFailed.isEmpty, "hostile sessions that ended without an error: \(neverFailed.prefix(10))")
        #expect(notVMError.isEmpty, "errors that are not VMErrors: \(notVMError.prefix(10))")
        #expect(unnamed.isEmpty, "errors without a message: \(unnamed.prefix(10))")
        #expect(wrongKind.isEmpty, "\(wrongKind.count) sessions ended unexpectedly:\n\(wrongKind.prefix(10).joined(separator: "\n"))")
        #expect(foreignResults.isEmpty, "results handed out for another request: \(foreignResults.prefix(10))")
        // The duplicated-reply and flood-before-hello cases need a first result to be accepted.
        #expect(results > 0)
        // Floods were cut off by the host: had it buffered them, the process would have grown by the flood.
        #expect(stats.floodBytes > 1 << 20)
        #expect(peak - baseline < 256 << 20)
    }
}

// MARK: - Random source and generators

/// SplitMix64: small, fast, and the same sequence on every machine.
struct AgentFuzzRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func bytes(_ count: Int) -> [UInt8] {
        // Eight bytes per step, without per-byte appends: this runs for megabytes in a debug build.
        let words = (count + 7) / 8
        var bytes = [UInt8](unsafeUninitializedCapacity: words * 8) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            for word in 0..<words { raw.storeBytes(of: next(), toByteOffset: word * 8, as: UInt64.self) }
            initialized = words * 8
        }
        bytes.removeLast(words * 8 - count)
        return bytes
    }

    /// A size for a string or a run of bytes: mostly small, sometimes up to 4 KiB, now and then up to `maximum`.
    mutating func size(upTo maximum: Int) -> Int {
        switch below(20) {
        case 0: return below(maximum + 1)
        case 1..<6: return below(min(maximum, 4096) + 1)
        default: return below(min(maximum, 64) + 1)
        }
    }
}

/// Frames as a hostile guest writes them.
enum AgentFuzzFrames {
    static func header(length: UInt32, magic: [UInt8] = AgentFrame.magic, version: UInt8 = agentProtocolVersion) -> [UInt8] {
        magic + [
            version, UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
            UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
        ]
    }

    static func frame(payload: [UInt8]) -> [UInt8] { header(length: UInt32(truncatingIfNeeded: payload.count)) + payload }
    static func frame(json: String) -> [UInt8] { frame(payload: Array(json.utf8)) }
    /// A frame as AgentFrame.encode makes it, but with sorted keys: JSONEncoder's key order changes from
    /// one process to the next, and a mutation at a given offset must hit the same byte on every run.
    static func frame(_ message: AgentMessage) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return frame(payload: Array(try encoder.encode(message)))
    }

    /// `piece` `count` times, by doubling: a per-piece loop is slow for megabytes in a debug build.
    static func repeated(_ piece: [UInt8], _ count: Int) -> [UInt8] {
        let total = piece.count * max(0, count)
        guard total > 0 else { return [] }
        var bytes = piece
        bytes.reserveCapacity(total)
        while bytes.count < total { bytes.append(contentsOf: bytes.prefix(total - bytes.count)) }
        return bytes
    }

    static func repeated(_ piece: String, _ count: Int) -> String {
        String(decoding: repeated(Array(piece.utf8), count), as: UTF8.self)
    }

    /// `depth` nested empty JSON arrays.
    static func nesting(_ depth: Int) -> String { repeated("[", depth) + repeated("]", depth) }

    static func hello(version: UInt8 = agentProtocolVersion, nonce: String? = nil) -> AgentMessage {
        .hello(AgentHello(protocolVersion: version, agentVersion: "fuzz", kernel: "Linux fuzz", resumeNonce: nonce))
    }

    static func result(id: String, stdout: Int = 0) -> AgentMessage {
        .result(
            RunResult(
                id: id, verdict: .ok, exitCode: 0, signal: nil, stdout: Data(repeating: 0x61, count: stdout), stderr: Data(),
                stdoutTruncated: false, stderrTruncated: false, wallTimeMilliseconds: 1, cpuTimeMilliseconds: 1, peakMemoryBytes: 1))
    }

    static func errorReply(_ message: String) -> AgentMessage { .error(AgentErrorReply(code: .internalError, message: message)) }
}

/// One JSON message as key/value text, so single fields can be made hostile.
struct AgentFuzzJSON {
    var kind: String
    var wrapper: String?
    var fields: [(key: String, value: String)]

    var text: String {
        let body = "{" + fields.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        guard let wrapper else { return "{\"\(kind)\":\(body)}" }
        return "{\"\(kind)\":{\"\(wrapper)\":\(body)}}"
    }

    static func hello() -> AgentFuzzJSON {
        AgentFuzzJSON(
            kind: "hello", wrapper: "_0",
            fields: [("protocolVersion", "1"), ("agentVersion", "\"fuzz\""), ("kernel", "\"Linux fuzz\"")])
    }

    static func result(id: String) -> AgentFuzzJSON {
        AgentFuzzJSON(
            kind: "result", wrapper: "_0",
            fields: [
                ("id", "\"\(id)\""), ("verdict", "\"ok\""), ("exitCode", "0"), ("stdout", "\"QUJD\""), ("stderr", "\"\""),
                ("stdoutTruncated", "false"), ("stderrTruncated", "false"), ("wallTimeMilliseconds", "1"),
                ("cpuTimeMilliseconds", "1"), ("peakMemoryBytes", "1"),
            ])
    }

    static func errorReply() -> AgentFuzzJSON {
        AgentFuzzJSON(kind: "error", wrapper: "_0", fields: [("code", "\"internal_error\""), ("message", "\"boom\"")])
    }
}

/// One decoder-level session: the bytes a guest writes on one connection before it ends (EOF).
struct AgentFuzzDecoderSession {
    var awaitingHandshake: Bool
    var limit: Int
    var stream: [UInt8]
    var frames: Int
    var labels: String
}

struct AgentFuzzGenerator {
    var random: AgentFuzzRandom
    private var counter = 0

    init(seed: UInt64) { random = AgentFuzzRandom(seed: seed) }

    /// Frame limits the decoder enforces: small ones (so boundaries are cheap to reach) and the control limit
    /// for the hello and errors; less often the largest, a run's result limit for 4 KiB of output per stream.
    static let limits = [512, 4096, AgentConnection.Options().controlFrameMaximumBytes]
    static let largestLimit = AgentConnection.maximumResultFrameBytes(for: ResourceLimits(maxOutputBytesPerStream: 4096))

    // MARK: Decoder sessions

    mutating func decoderSession() throws -> AgentFuzzDecoderSession {
        counter += 1
        // The largest limit less often: its frames are the most expensive to build and decode.
        let limit = random.chance(10) ? Self.largestLimit : random.pick(Self.limits)
        let awaitingHandshake = random.chance(12)
        var stream: [UInt8] = []
        var labels: [String] = []
        var frames = 0
        if awaitingHandshake {
            stream += handshakeLine()
            labels.append("handshake")
        }
        for _ in 0..<1 + random.below(5) {
            let unit = try hostileUnit(limit: limit)
            stream += unit.bytes
            frames += unit.frames
            labels.append(unit.label)
        }
        if random.chance(25) && !stream.isEmpty {
            // The connection closes mid-frame.
            stream.removeLast(1 + random.below(min(stream.count, 1 + random.below(4096))))
            labels.append("truncated")
        }
        return AgentFuzzDecoderSession(
            awaitingHandshake: awaitingHandshake, limit: limit, stream: stream, frames: frames, labels: labels.joined(separator: ","))
    }

    private mutating func handshakeLine() -> [UInt8] {
        switch random.below(12) {
        case 0..<6: return Array("OK \(UInt32(truncatingIfNeeded: random.next()))\n".utf8)
        case 6: return Array("OK \(UInt64(UInt32.max) + 1 + UInt64(random.below(1 << 30)))\n".utf8)
        case 7:
            return Array(
                random.pick(["NOPE\n", "OK\n", "OK 1 2\n", "\n", "OK -1\n", " OK  7 \n", "OK +5\n", "ok 5\n", "OK 0x10\n", "OK 5\r\n"]).utf8)
        case 8: return Array(repeating: UInt8(ascii: "O"), count: 64 + random.below(200))
        case 9: return Array(("OK " + AgentFuzzFrames.repeated("0", 59) + "7\n").utf8)  // newline as the 64th byte
        case 10: return Array(("OK " + AgentFuzzFrames.repeated("0", 60) + "7\n").utf8)  // newline as the 65th byte
        default: return random.bytes(random.below(100))
        }
    }

    struct Unit {
        var bytes: [UInt8]
        var frames: Int
        var label: String
    }

    private mutating func validMessage(limit: Int) -> AgentMessage {
        switch random.below(6) {
        case 0: return AgentFuzzFrames.hello()
        case 1: return AgentFuzzFrames.hello(nonce: "n\(random.below(1000))")
        case 2: return AgentFuzzFrames.result(id: "fuzz-\(counter)", stdout: random.size(upTo: limit / 2))
        case 3: return AgentFuzzFrames.errorReply(AgentFuzzFrames.repeated("e", random.size(upTo: limit / 2)))
        case 4: return .shutdown
        default: return AgentFuzzFrames.result(id: "fuzz-\(counter)")
        }
    }

    mutating func hostileUnit(limit: Int) throws -> Unit {
        let header = AgentFrame.headerSize
        switch random.below(100) {
        case 0..<30:
            return Unit(bytes: mutate(try AgentFuzzFrames.frame(validMessage(limit: limit))), frames: 1, label: "mutated")
        case 30..<47:
            return Unit(bytes: AgentFuzzFrames.frame(payload: hostileJSON(limit: limit)), frames: 1, label: "hostile_json")
        case 47..<57:
            return Unit(bytes: try semanticFrames(limit: limit), frames: 1, label: "semantic")
        case 57..<64:
            // A length the host must refuse from the header: just above the limit, "negative", the maximum, random.
            let length = random.pick([
                UInt32(limit + 1), 0x8000_0000, 0xFFFF_FFFF, 0x7FFF_FFFF, UInt32(limit + 1) + UInt32(random.below(1 << 30)),
            ])
            // Followed by more than the limit, which a host that buffered before checking would keep.
            return Unit(bytes: AgentFuzzFrames.header(length: length) + random.bytes(random.size(upTo: limit + 2 * header)), frames: 1, label: "huge_length")
        case 64..<68:
            return Unit(bytes: AgentFuzzFrames.header(length: 0), frames: 1, label: "zero_length")
        case 68..<72:
            // Exactly the limit (a valid hello padded with JSON whitespace), or one byte more.
            let json = Array(AgentFuzzJSON.hello().text.utf8)
            let size = limit + random.below(2)
            return Unit(bytes: AgentFuzzFrames.frame(payload: json + Array(repeating: UInt8(ascii: " "), count: size - json.count)), frames: 1, label: "boundary")
        case 72..<77:
            var magic = random.bytes(3)
            if magic == AgentFrame.magic { magic[0] ^= 0x80 }
            let payload = Array(AgentFuzzJSON.hello().text.utf8)
            return Unit(bytes: AgentFuzzFrames.header(length: UInt32(payload.count), magic: magic) + payload, frames: 1, label: "bad_magic")
        case 77..<81:
            var version = UInt8(truncatingIfNeeded: random.next())
            if version == agentProtocolVersion { version = 0 }
            let payload = Array(AgentFuzzJSON.hello().text.utf8)
            return Unit(bytes: AgentFuzzFrames.header(length: UInt32(payload.count), version: version) + payload, frames: 1, label: "bad_version")
        case 81..<89:
            let garbage: [UInt8] =
                switch random.below(4) {
                case 0: Array("Kernel panic - not syncing: VFS: Unable to mount root fs\n".utf8)
                case 1: Array(repeating: 0, count: 1 + random.below(64))
                case 2: Array(repeating: 0xFF, count: 1 + random.below(64))
                default: random.bytes(1 + random.below(2048))
                }
            return Unit(bytes: garbage, frames: 1, label: "garbage")
        case 89..<93:
            // Many small frames at once: more than the host queues.
            let count = 4 + random.below(40)
            let one = try AgentFuzzFrames.frame(AgentFuzzFrames.hello())
            return Unit(bytes: AgentFuzzFrames.repeated(one, count), frames: count, label: "small_frame_flood")
        case 93..<96:
            let depth = random.pick([100, 511, 512, 513, 5000, max(1, limit / 2 - 40)])
            var model = random.chance(50) ? AgentFuzzJSON.hello() : AgentFuzzJSON.result(id: "deep")
            model.fields.insert(
                ("unknown", AgentFuzzFrames.nesting(depth)), at: random.below(model.fields.count + 1))
            return Unit(bytes: AgentFuzzFrames.frame(json: model.text), frames: 1, label: "deep_nesting")
        case 96..<98:
            // One string filling (or overfilling) the limit.
            let size = max(0, limit - 120 + random.below(240))
            var model = AgentFuzzJSON.hello()
            let piece = random.pick(["A", "é", "\\n", "\\u0041"])
            model.fields[2].value = "\"" + AgentFuzzFrames.repeated(piece, size / piece.utf8.count) + "\""
            return Unit(bytes: AgentFuzzFrames.frame(json: model.text), frames: 1, label: "huge_string")
        default:
            // A stream of noise, as a console on the wrong port would write.
            let size = random.chance(20) ? 64 << 10 : 16 << 10
            let noise = random.chance(50) ? random.bytes(size) : Array(repeating: UInt8(ascii: "A"), count: size)
            return Unit(bytes: noise, frames: 1, label: "garbage_flood")
        }
    }

    /// Well-formed frames a correct agent would not send: replies for nobody, duplicates, host-to-agent
    /// kinds, another protocol version, hellos mid-stream, error replies as long as the limit allows.
    private mutating func semanticFrames(limit: Int) throws -> [UInt8] {
        let message: AgentMessage =
            switch random.below(8) {
            case 0: AgentFuzzFrames.result(id: "someone-else-\(random.below(100))")
            case 1: AgentFuzzFrames.hello(version: UInt8(truncatingIfNeeded: random.next()))
            case 2: .run(RunRequest(id: "from-the-guest", workload: .shell(command: "reboot")))
            case 3: .resume(AgentResume(nonce: "guest", unixTimeNanoseconds: -1, entropy: Data()))
            case 4: AgentFuzzFrames.errorReply(AgentFuzzFrames.repeated("\u{1B}[2J", random.size(upTo: limit / 8)))
            case 5:
                .result(
                    RunResult(
                        id: "", verdict: .internalError, exitCode: Int32.min, signal: Int32.max, stdout: Data(), stderr: Data(),
                        stdoutTruncated: true, stderrTruncated: true, wallTimeMilliseconds: Int.min, cpuTimeMilliseconds: -1,
                        peakMemoryBytes: Int.max, compileOutput: Data([0, 0xFF]), message: "\u{0}"))
            case 6: .shutdown
            default: AgentFuzzFrames.hello(nonce: AgentFuzzFrames.repeated("n", random.size(upTo: limit / 2)))
            }
        let frame = try AgentFuzzFrames.frame(message)
        // Sometimes the same frame twice: a duplicated reply.
        return random.chance(25) ? frame + frame : frame
    }

    private mutating func hostileValue(limit: Int) -> String {
        switch random.below(24) {
        case 0: return "\"1\""
        case 1: return "1.5"
        case 2: return "-1"
        case 3: return "256"
        case 4: return "4294967296"
        case 5: return "1e400"
        case 6: return "-0"
        case 7: return "99999999999999999999999999999"
        case 8: return "null"
        case 9: return "true"
        case 10: return "[]"
        case 11: return "{}"
        case 12: return "\"\""
        case 13: return "\"\\ud800\""
        case 14: return "\"\\u0000\""
        case 15: return "\"not base64!\""
        case 16: return "\"pwned\""
        case 17: return "\"ok\""
        case 18: return "\"internal_error\""
        case 19: return "\"QUJD\""
        case 20: return "\"" + AgentFuzzFrames.repeated(random.pick(["A", "é", "\\n", "\\u0041"]), random.size(upTo: limit / 4)) + "\""
        case 21:
            let depth = random.pick([10, 512, 513, max(1, limit / 2 - 64)])
            return AgentFuzzFrames.nesting(depth)
        case 22: return "{\"_0\":1}"
        default: return "\"\(String(decoding: random.bytes(random.below(12)).map { 0x20 + $0 % 0x5E }.filter { $0 != 0x22 && $0 != 0x5C }, as: UTF8.self))\""
        }
    }

    /// A message whose JSON is wrong in one to three ways: a field of the wrong type or out of range, a
    /// field missing or twice, an unknown field, an unknown kind, a wrong wrapper, a payload that is not JSON.
    private mutating func hostileJSON(limit: Int) -> [UInt8] {
        var model =
            switch random.below(3) {
            case 0: AgentFuzzJSON.hello()
            case 1: AgentFuzzJSON.result(id: "fuzz-\(counter)")
            default: AgentFuzzJSON.errorReply()
            }
        for _ in 0..<1 + random.below(3) {
            switch random.below(9) {
            case 0, 1, 2:
                model.fields[random.below(model.fields.count)].value = hostileValue(limit: limit)
            case 3:
                if model.fields.count > 1 { model.fields.remove(at: random.below(model.fields.count)) }
            case 4:
                let field = model.fields[random.below(model.fields.count)]
                model.fields.insert((field.key, hostileValue(limit: limit)), at: random.below(model.fields.count + 1))
            case 5:
                model.fields.insert(("x\(random.below(10))", hostileValue(limit: limit)), at: random.below(model.fields.count + 1))
            case 6:
                model.kind = random.pick(["pwn", "Hello", "", "result ", "run", "resume", "shutdown", "error\\u0000", "hello\\ud800"])
            case 7:
                model.wrapper = random.pick(["_1", "0", "", nil, "_0\\u0000"])
            default:
                var text = Array(model.text.utf8)
                switch random.below(4) {
                case 0: text.removeLast(1 + random.below(4))
                case 1: text += text
                case 2: text = Array("[".utf8) + text + Array("]".utf8)
                default:
                    // Invalid UTF-8 or a raw control byte somewhere, likely inside a string.
                    text[random.below(text.count)] = random.pick([0xC3, 0xFF, 0xED, 0x80, 0x00, 0x1F])
                }
                return text
            }
        }
        return Array(model.text.utf8)
    }

    /// Bit flips, overwritten, inserted, deleted and duplicated bytes, a rewritten length, a cut, a splice.
    private mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<1 + random.below(4) {
            guard !bytes.isEmpty else { break }
            let index = random.below(bytes.count)
            switch random.below(9) {
            case 0: bytes[index] ^= UInt8(1) << UInt8(random.below(8))
            case 1: bytes[index] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.insert(contentsOf: random.bytes(1 + random.below(16)), at: index)
            case 3: bytes.removeSubrange(index..<min(bytes.count, index + 1 + random.below(32)))
            case 4:
                let end = min(bytes.count, index + 1 + random.below(64))
                bytes.insert(contentsOf: bytes[index..<end], at: random.below(bytes.count + 1))
            case 5 where bytes.count >= AgentFrame.headerSize:
                let length = random.chance(50) ? UInt32(truncatingIfNeeded: random.next()) : UInt32(truncatingIfNeeded: bytes.count - 8 + random.below(9) - 4)
                bytes.replaceSubrange(4..<8, with: AgentFuzzFrames.header(length: length)[4..<8])
            case 6: bytes.removeSubrange(index...)
            case 7: bytes += bytes.prefix(random.below(bytes.count))
            default: bytes[index] = random.pick(Array("{}[]\",:\\".utf8) + [0, 0x1F, 0xC3, 0xFF])
            }
        }
        return bytes
    }

    // MARK: End-to-end cases

    mutating func endToEndCase(index: Int) throws -> AgentFuzzEndToEndCase {
        let hello = try AgentFuzzFrames.frame(AgentFuzzFrames.hello())
        let templates = AgentFuzzEndToEnd.templates
        // Two thirds structured (every template in turn), one third random streams after a valid hello.
        if index % 3 != 2 {
            return try AgentFuzzEndToEnd.structured(templates[(index - index / 3) % templates.count], random: &random)
        }
        let limit = AgentConnection.maximumResultFrameBytes(for: AgentFuzzEndToEnd.limits)
        var stream: [UInt8] = []
        var frames = 0
        for _ in 0..<1 + random.below(4) {
            let unit = try hostileUnit(limit: limit)
            stream += unit.bytes
            frames += unit.frames
        }
        let helloFirst = random.chance(85)
        var script = AgentFuzzScript(greeting: helloFirst ? hello : stream, frames: frames + (helloFirst ? 1 : 0))
        if helloFirst { script.replies = [.bytes(stream)] }
        script.after = random.pick([.close, .close, .close, .hold])
        script.chunk = stream.count <= 4096 ? random.pick([1, 7, 512, 4096]) : random.pick([512, 4096, 64 << 10])
        var fuzzCase = AgentFuzzEndToEndCase(label: "random-\(index)", handshake: .none, resume: false, script: script, expected: [])
        if case .hold = script.after {
            // Whatever the host waits for may never come: only its own timeouts end the session.
            fuzzCase.helloTimeout = AgentFuzzEndToEnd.short
            fuzzCase.runTimeout = AgentFuzzEndToEnd.short
        }
        return fuzzCase
    }
}

// MARK: - The framing rules, read independently

enum AgentFuzzInbound: Equatable {
    case handshake(UInt32)
    case message(AgentMessage)
}

/// What docs/agent-protocol.md says a host does with a byte stream that ends: the messages it passes on
/// (at most `capacity` unread) and how the session ends. Written from the rules, not from the decoder: a
/// header is refused as soon as it is complete, for its magic first (noise is noise, whatever its bytes
/// 4-7 say) and then for a length above the limit; the version and the JSON are judged on the whole
/// frame; a partial frame at EOF is dropped.
enum AgentFramingReference {
    struct Prediction {
        var inbound: [AgentFuzzInbound] = []
        var end = "eof"
    }

    static func predict(_ stream: [UInt8], awaitingHandshake: Bool, limit: Int, capacity: Int) -> Prediction {
        var prediction = Prediction()
        var position = 0
        func deliver(_ inbound: AgentFuzzInbound) -> Bool {
            guard prediction.inbound.count < capacity else {
                prediction.end = "queue_overflow"
                return false
            }
            prediction.inbound.append(inbound)
            return true
        }
        if awaitingHandshake {
            let window = stream.prefix(64)
            guard let newline = window.firstIndex(of: UInt8(ascii: "\n")) else {
                if window.count >= 64 { prediction.end = "handshake" }
                return prediction
            }
            let words = String(decoding: stream[..<newline], as: UTF8.self).split(separator: " ")
            guard words.count == 2, words[0] == "OK", let port = UInt32(words[1]) else {
                prediction.end = "handshake"
                return prediction
            }
            guard deliver(.handshake(port)) else { return prediction }
            position = newline + 1
        }
        while stream.count - position >= AgentFrame.headerSize {
            if Array(stream[position..<position + 3]) != AgentFrame.magic {
                prediction.end = "bad_magic"
                return prediction
            }
            let length = stream[position + 4..<position + 8].reduce(0) { $0 << 8 | Int($1) }
            if length > limit {
                prediction.end = "too_large"
                return prediction
            }
            guard stream.count - position >= AgentFrame.headerSize + length else { return prediction }
            if stream[position + 3] != agentProtocolVersion {
                prediction.end = "unsupported_version"
                return prediction
            }
            let payload = Data(stream[position + AgentFrame.headerSize..<position + AgentFrame.headerSize + length])
            guard let message = try? JSONDecoder().decode(AgentMessage.self, from: payload) else {
                prediction.end = "invalid_payload"
                return prediction
            }
            guard deliver(.message(message)) else { return prediction }
            position += AgentFrame.headerSize + length
        }
        return prediction
    }
}

/// Names for how a session ended, shared by the decoder-level and end-to-end counts.
enum AgentFuzzEnd {
    static func label(of error: (any Error)?) -> String {
        switch error {
        case nil: return "eof"
        case let frameError as AgentFrameError: return frameError.code.rawValue
        case let connectionError as AgentConnectionError:
            switch connectionError {
            case .handshake: return "handshake"
            case .queueOverflow: return "queue_overflow"
            }
        case let error?: return "other \(type(of: error))"
        }
    }

    /// The words AgentConnection's error must contain for each end.
    static func reasonText(_ end: String) -> String {
        switch end {
        case "eof": return "closed"
        case "handshake": return "vsock handshake failed"
        case "queue_overflow": return "unsolicited messages"
        default: return "agent frame \(end)"
        }
    }

    /// A VMError's code and, for protocol errors, what was wrong.
    static func label(of error: VMError) -> String {
        let reasons = [
            ("agent frame ", ""), ("vsock handshake failed", "handshake"), ("unsolicited", "queue_overflow"),
            ("answered request", "wrong_id"), ("rejected the request", "error_reply"), ("refused its resume", "error_reply"),
            ("expected the agent's hello", "not_a_hello"), ("expected a result", "not_a_result"),
            ("protocol version", "version"), ("handshake reply", "handshake"),
        ]
        guard error.code == .agentProtocol else { return error.code.rawValue }
        for (text, reason) in reasons {
            guard let range = error.message.firstRange(of: text) else { continue }
            if !reason.isEmpty { return "agent_protocol/\(reason)" }
            return "agent_protocol/" + error.message[range.upperBound...].prefix { $0 != ":" }
        }
        return "agent_protocol/other"
    }
}

// MARK: - The real pipeline in an EmbeddedChannel

/// Bytes ByteToMessageHandler handed the decoder (`offered`) and kept for it while waiting for more (`kept`).
final class AgentFuzzBufferGauge {
    var peakOffered = 0
    var peakKept = 0
    /// The most the decoder may keep: a header and a payload one byte short of the limit, or a handshake line.
    let bound: Int

    init(limit: Int) { bound = max(AgentFrame.headerSize + limit - 1, AgentChannelDecoder.maximumHandshakeLine - 1) }
}

/// The real AgentChannelDecoder, with the gauge reading the buffer ByteToMessageHandler passes it.
struct AgentFuzzGaugedDecoder: ByteToMessageDecoder {
    typealias InboundOut = AgentInbound

    let decoder: AgentChannelDecoder
    let gauge: AgentFuzzBufferGauge

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        gauge.peakOffered = max(gauge.peakOffered, buffer.readableBytes)
        let state = try decoder.decode(context: context, buffer: &buffer)
        if state == .needMoreData { gauge.peakKept = max(gauge.peakKept, buffer.readableBytes) }
        return state
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        gauge.peakOffered = max(gauge.peakOffered, buffer.readableBytes)
        return try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }
}

enum AgentFuzzPipeline {
    /// AgentMailbox's default, which AgentConnection uses.
    static let capacity = 8

    /// Writes the session's bytes into a fresh pipeline in random pieces (at most 64 KiB, NIO's largest
    /// read), stopping when the host closes the channel, then ends the stream (EOF).
    static func feed(_ session: AgentFuzzDecoderSession, into mailbox: AgentMailbox, random: inout AgentFuzzRandom) throws -> AgentFuzzBufferGauge {
        let gauge = AgentFuzzBufferGauge(limit: session.limit)
        let decoder = AgentChannelDecoder(awaitingHandshake: session.awaitingHandshake, limit: AgentFrameLimit(session.limit))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(AgentFuzzGaugedDecoder(decoder: decoder, gauge: gauge)))
        try channel.pipeline.syncOperations.addHandler(AgentChannelHandler(mailbox: mailbox))
        channel.connect(to: try SocketAddress(unixDomainSocketPath: "/agent-fuzz"), promise: nil)
        let largest: Int =
            switch random.below(10) {
            case 0, 1, 2, 3: 64 << 10
            case 4 where session.stream.count <= 4096: 1 + random.below(7)
            case 5, 6: 1 + random.below(4096)
            default: 1 + random.below(64 << 10)
            }
        var position = 0
        while position < session.stream.count && channel.isActive {
            let size = min(session.stream.count - position, 1 + random.below(largest))
            var buffer = channel.allocator.buffer(capacity: size)
            buffer.writeBytes(session.stream[position..<position + size])
            try channel.writeInbound(buffer)
            position += size
        }
        channel.close(promise: nil)
        channel.embeddedEventLoop.run()
        return gauge
    }
}

// MARK: - End to end

/// What a hostile peer writes after a host message (run or resume), in order.
enum AgentFuzzReply: Sendable {
    case bytes([UInt8])
    /// A valid result for the request, `copies` times (a duplicated reply when more than one).
    case echoResult(copies: Int, stdout: Int)
    /// A hello answering a resume, with its nonce.
    case echoResumeHello
}

enum AgentFuzzAfter: Sendable {
    case close
    /// Stays connected and silent.
    case hold
    /// Writes the bytes again and again, as fast as the host reads, until the host closes.
    case flood([UInt8], frames: Int)
    /// Writes the bytes every `interval` until the host closes.
    case drip([UInt8], interval: TimeAmount)
}

struct AgentFuzzScript: Sendable {
    /// Written after the host's `CONNECT` line; nil when the host does no handshake.
    var handshakeReply: [UInt8]?
    /// Written as soon as the channel opens (after the handshake reply).
    var greeting: [UInt8]
    /// Answers to the host's messages, one each; then `after`.
    var replies: [AgentFuzzReply] = []
    var after: AgentFuzzAfter = .close
    /// Largest piece written at once.
    var chunk = 64 << 10
    /// Frames in the scripted bytes (floods count as they are written).
    var frames: Int

    init(handshakeReply: [UInt8]? = nil, greeting: [UInt8], frames: Int) {
        self.handshakeReply = handshakeReply
        self.greeting = greeting
        self.frames = frames
    }
}

struct AgentFuzzEndToEndCase: Sendable {
    var label: String
    var handshake: AgentHandshake
    /// Whether the host resumes the agent (as after a snapshot restore) before its runs.
    var resume: Bool
    var script: AgentFuzzScript
    /// VMError codes the session may end with; empty: any, as long as it is a VMError with a message.
    var expected: Set<String>
    /// The full end label (AgentFuzzEnd.label) the session must end with, where the case allows only one.
    var reason: String?
    /// The host's timeouts: long unless the case expects one of them to end the session (a hostile
    /// session otherwise ends at once, so a long timeout costs nothing and a loaded machine cannot fake a pass).
    var helloTimeout = AgentFuzzEndToEnd.patient
    var resumeTimeout = AgentFuzzEndToEnd.patient
    var runTimeout = AgentFuzzEndToEnd.patient
}

struct AgentFuzzSessionReport: Sendable {
    enum End: Sendable {
        case vmError(VMError)
        case otherError(String)
        case finishedWithoutError
        case hung
    }

    var label: String
    var expected: Set<String>
    var reason: String?
    var end: End
    var results = 0
    var foreignResults: [String] = []
    var duration = Duration.zero
    var resident = 0
}

enum AgentFuzzEndToEnd {
    static let sessionCount = 360
    /// Sessions at once: most end at once, some wait for a host timeout.
    static let concurrency = 8
    static let watchdog = Duration.seconds(20)
    static let limits = ResourceLimits(maxOutputBytesPerStream: 4096)

    static let connectTimeout = Duration.seconds(3)
    static let patient = Duration.seconds(3)
    static let short = Duration.milliseconds(250)

    enum Template: CaseIterable {
        case helloOfAnotherVersion, resultBeforeHello, errorBeforeHello, runFromTheGuest, silentThenClose, silentAndHold
        case resultForAnotherRequest, duplicatedReply, hugeErrorReply, unknownKind, wrongTypes, hugeLength, negativeLength
        case zeroLength, truncatedThenClose, truncatedAndHold, garbage, shortGarbageAndHold, helloFloodDuringRun
        case helloDripDuringRun, garbageFlood, fullFrameFlood, smallFramesBeforeHello, resultLargerThanLimits
        case badHandshakeReply, handshakeLineTooLong, handshakePortOutOfRange, frameInsteadOfHandshake
        case resumeAnsweredByStrangers, resumeRefused, resumeThenBadResult, deepNesting
    }

    static let templates = Template.allCases

    static func structured(_ template: Template, random: inout AgentFuzzRandom) throws -> AgentFuzzEndToEndCase {
        let hello = try AgentFuzzFrames.frame(AgentFuzzFrames.hello())
        let result = try AgentFuzzFrames.frame(AgentFuzzFrames.result(id: "whoever"))
        let protocolError: Set<String> = ["agent_protocol"]
        var handshake = AgentHandshake.none
        var resume = false
        var expected = protocolError
        var script = AgentFuzzScript(greeting: hello, frames: 2)
        var helloTimeout = patient
        var resumeTimeout = patient
        var runTimeout = patient
        // What the agent_protocol error must say was wrong (AgentFuzzEnd.label), where only one thing is.
        let reasons: [Template: String] = [
            .helloOfAnotherVersion: "version", .resultBeforeHello: "not_a_hello", .errorBeforeHello: "not_a_hello",
            .runFromTheGuest: "not_a_hello", .resultForAnotherRequest: "wrong_id", .duplicatedReply: "wrong_id",
            .hugeErrorReply: "error_reply", .unknownKind: "invalid_payload", .hugeLength: "too_large", .negativeLength: "too_large",
            .zeroLength: "invalid_payload", .garbage: "bad_magic", .garbageFlood: "bad_magic", .fullFrameFlood: "invalid_payload",
            .resultLargerThanLimits: "too_large", .badHandshakeReply: "handshake", .handshakeLineTooLong: "handshake",
            .handshakePortOutOfRange: "handshake", .frameInsteadOfHandshake: "handshake", .resumeRefused: "error_reply",
            .resumeThenBadResult: "wrong_id", .deepNesting: "invalid_payload",
        ]

        switch template {
        case .helloOfAnotherVersion:
            script.greeting = try AgentFuzzFrames.frame(AgentFuzzFrames.hello(version: 2 + UInt8(random.below(250))))
        case .resultBeforeHello:
            script.greeting = result
        case .errorBeforeHello:
            script.greeting = try AgentFuzzFrames.frame(AgentFuzzFrames.errorReply("not ready"))
        case .runFromTheGuest:
            script.greeting = try AgentFuzzFrames.frame(.run(RunRequest(id: "x", workload: .shell(command: "id"))))
        case .silentThenClose:
            script.greeting = []
            expected = ["agent_unreachable"]
        case .silentAndHold:
            script.greeting = []
            script.after = .hold
            helloTimeout = short
            expected = ["boot_timeout"]
        case .resultForAnotherRequest:
            script.replies = [.bytes(result)]
        case .duplicatedReply:
            // The first run gets its result; the copy must not pass for the second run's.
            script.replies = [.echoResult(copies: 2, stdout: 10)]
            script.after = .hold
        case .hugeErrorReply:
            script.replies = [.bytes(try AgentFuzzFrames.frame(AgentFuzzFrames.errorReply(AgentFuzzFrames.repeated("E", 60_000))))]
        case .unknownKind:
            script.replies = [.bytes(AgentFuzzFrames.frame(json: random.pick([#"{"pwn":{"_0":{}}}"#, "{}", "[]", "null", #""hello""#])))]
        case .wrongTypes:
            var model = AgentFuzzJSON.result(id: "x")
            model.fields[random.below(model.fields.count)].value = random.pick(["\"zero\"", "1e400", "null", "[]", "-1.5"])
            script.replies = [.bytes(AgentFuzzFrames.frame(json: model.text))]
        case .hugeLength:
            script.replies = [.bytes(AgentFuzzFrames.header(length: 0xFFFF_FFFF) + random.bytes(random.below(100_000)))]
        case .negativeLength:
            script.replies = [.bytes(AgentFuzzFrames.header(length: 0x8000_0000 + UInt32(random.below(1000))))]
        case .zeroLength:
            script.replies = [.bytes(AgentFuzzFrames.header(length: 0))]
        case .truncatedThenClose:
            let frame = try AgentFuzzFrames.frame(AgentFuzzFrames.result(id: "x", stdout: 2000))
            script.replies = [.bytes(Array(frame.prefix(random.below(frame.count))))]
            expected = ["agent_unreachable"]
        case .truncatedAndHold:
            let frame = try AgentFuzzFrames.frame(AgentFuzzFrames.result(id: "x", stdout: 2000))
            script.replies = [.bytes(Array(frame.prefix(random.below(frame.count))))]
            script.after = .hold
            runTimeout = short
            expected = ["host_timeout"]
        case .garbage:
            script.replies = [.bytes(Array("Kernel panic - not syncing: Attempted to kill init!".utf8) + random.bytes(random.below(5000)))]
        case .shortGarbageAndHold:
            // Fewer bytes than a header: nothing to refuse yet, so only the host's timeout ends it.
            script.replies = [.bytes(random.bytes(1 + random.below(AgentFrame.headerSize - 1)))]
            script.after = .hold
            runTimeout = short
            expected = ["host_timeout"]
        case .helloFloodDuringRun:
            script.replies = [.bytes([])]
            script.after = .flood(AgentFuzzFrames.repeated(hello, 64), frames: 64)
            runTimeout = short
            expected = ["agent_protocol", "host_timeout"]
        case .helloDripDuringRun:
            // Hellos are skipped while waiting for a result: a steady trickle must not outlive the timeout.
            script.replies = [.bytes([])]
            script.after = .drip(hello, interval: .microseconds(Int64(20 + random.below(200))))
            runTimeout = short
            expected = ["agent_protocol", "host_timeout"]
        case .garbageFlood:
            script.replies = [.bytes([])]
            script.after = .flood(random.bytes(16 << 10), frames: 1)
        case .fullFrameFlood:
            // A header announcing exactly the limit, then bytes without end.
            let limit = AgentConnection.maximumResultFrameBytes(for: limits)
            script.replies = [.bytes(AgentFuzzFrames.header(length: UInt32(limit)))]
            script.after = .flood(Array(repeating: UInt8(ascii: "A"), count: 16 << 10), frames: 0)
        case .smallFramesBeforeHello:
            // More unsolicited frames than the host queues, before it even waits for the hello.
            script.greeting = AgentFuzzFrames.repeated(hello, 9 + random.below(40))
            script.frames = 50
            script.replies = [.echoResult(copies: 1, stdout: 0)]
            expected = ["agent_protocol", "agent_unreachable"]
        case .resultLargerThanLimits:
            script.replies = [.echoResult(copies: 1, stdout: 3 * AgentConnection.maximumResultFrameBytes(for: limits))]
        case .badHandshakeReply:
            handshake = .firecrackerVsock(port: 1024)
            script.handshakeReply = Array(random.pick(["NOPE\n", "OK\n", "OK 1 2\n", "OK -1\n", "\n", "OK 0x10\n"]).utf8)
        case .handshakeLineTooLong:
            handshake = .firecrackerVsock(port: 1024)
            script.handshakeReply = Array(repeating: UInt8(ascii: "K"), count: 64 + random.below(1000))
            script.after = .hold
        case .handshakePortOutOfRange:
            handshake = .firecrackerVsock(port: 1024)
            script.handshakeReply = Array("OK \(UInt64(UInt32.max) + 1 + UInt64(random.below(1000)))\n".utf8)
        case .frameInsteadOfHandshake:
            handshake = .firecrackerVsock(port: 1024)
            script.handshakeReply = hello
        case .resumeAnsweredByStrangers:
            // Hellos without the resume's nonce are skipped: a steady trickle must not outlive the timeout.
            resume = true
            let stranger = try AgentFuzzFrames.frame(AgentFuzzFrames.hello(nonce: random.chance(50) ? nil : "not-yours"))
            script.replies = [.bytes([])]
            script.after = .drip(stranger, interval: .microseconds(Int64(20 + random.below(200))))
            resumeTimeout = short
            expected = ["agent_protocol", "boot_timeout"]
        case .resumeRefused:
            resume = true
            script.replies = [.bytes(try AgentFuzzFrames.frame(AgentFuzzFrames.errorReply("RNDADDENTROPY: EPERM")))]
        case .resumeThenBadResult:
            resume = true
            script.replies = [.echoResumeHello, .bytes(result)]
        case .deepNesting:
            var model = AgentFuzzJSON.result(id: "x")
            let depth = random.pick([513, 100_000])
            model.fields.append(("deep", AgentFuzzFrames.nesting(depth)))
            script.replies = [.bytes(AgentFuzzFrames.frame(json: model.text))]
        }
        // Byte-sized pieces only for small scripts: the peer's event loop, shared by all sessions, writes them in one go.
        let largest = script.replies.reduce(script.greeting.count) { if case .bytes(let bytes) = $1 { max($0, bytes.count) } else { $0 } }
        script.chunk = largest <= 4096 ? random.pick([1, 3, 512, 64 << 10]) : random.pick([512, 4096, 64 << 10])
        var fuzzCase = AgentFuzzEndToEndCase(label: "\(template)", handshake: handshake, resume: resume, script: script, expected: expected)
        fuzzCase.helloTimeout = helloTimeout
        fuzzCase.resumeTimeout = resumeTimeout
        fuzzCase.runTimeout = runTimeout
        fuzzCase.reason = reasons[template].map { "agent_protocol/\($0)" }
        return fuzzCase
    }

    /// Connect, hello, maybe resume, then up to three runs: the session ends at its first error.
    static func run(_ fuzzCase: AgentFuzzEndToEndCase, index: Int, path: String, logger: Logger) async -> AgentFuzzSessionReport {
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await withWatchdog(watchdog) { () async -> AgentFuzzSessionReport in
            var report = AgentFuzzSessionReport(label: fuzzCase.label, expected: fuzzCase.expected, reason: fuzzCase.reason, end: .finishedWithoutError)
            var connection: AgentConnection?
            do {
                let options = AgentConnection.Options(handshake: fuzzCase.handshake, handshakeAttemptTimeout: .seconds(1))
                let connected = try await AgentConnection.connect(unixSocketPath: path, options: options, timeout: connectTimeout, logger: logger)
                connection = connected
                _ = try await connected.waitForHello(timeout: fuzzCase.helloTimeout)
                if fuzzCase.resume {
                    let resume = AgentResume(nonce: "nonce-\(index)", unixTimeNanoseconds: 1, entropy: Data(repeating: 7, count: 32))
                    let hello = try await connected.resume(resume, timeout: fuzzCase.resumeTimeout)
                    if hello.resumeNonce != resume.nonce { report.foreignResults.append("\(fuzzCase.label): hello for \(hello.resumeNonce ?? "nil")") }
                }
                for run in 0..<3 {
                    let request = RunRequest(id: "fuzz-\(index)-\(run)", workload: .shell(command: "true"), limits: limits)
                    let result = try await connected.run(request, timeout: fuzzCase.runTimeout)
                    report.results += 1
                    if result.id != request.id { report.foreignResults.append("\(fuzzCase.label): \(result.id) for \(request.id)") }
                }
            } catch let error as VMError {
                report.end = .vmError(error)
            } catch {
                report.end = .otherError("\(type(of: error)): \(error)")
            }
            await connection?.close()
            return report
        }
        var report = outcome ?? AgentFuzzSessionReport(label: fuzzCase.label, expected: fuzzCase.expected, reason: fuzzCase.reason, end: .hung)
        report.duration = clock.now - start
        return report
    }

    /// `body`'s value, or nil if it is still running after `limit` (it is then cancelled and left behind).
    static func withWatchdog<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
        let once = AgentFuzzOnce<T?>()
        return await withCheckedContinuation { continuation in
            once.set(continuation)
            let work = Task {
                let value = await body()
                once.resume(value)
            }
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                if once.resume(nil) { work.cancel() }
            }
            Task {
                await work.value
                timer.cancel()
            }
        }
    }
}

/// A continuation resumed by whichever comes first.
final class AgentFuzzOnce<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    @discardableResult
    func resume(_ value: T) -> Bool {
        guard let continuation = continuation.withLock({ stored in
            defer { stored = nil }
            return stored
        }) else { return false }
        continuation.resume(returning: value)
        return true
    }
}

final class AgentFuzzPeerStats: Sendable {
    private let counters = Mutex((frames: 0, bytes: 0, floodBytes: 0))

    var frames: Int { counters.withLock { $0.frames } }
    var bytes: Int { counters.withLock { $0.bytes } }
    var floodBytes: Int { counters.withLock { $0.floodBytes } }

    func wrote(frames: Int, bytes: Int, flood: Bool) {
        counters.withLock {
            $0.frames += frames
            $0.bytes += bytes
            if flood { $0.floodBytes += bytes }
        }
    }
}

/// A hostile agent on a Unix socket: follows its script on every connection.
final class AgentFuzzPeer: Sendable {
    /// Accepted connections, so `stop` can close what the host left open.
    private final class Children: Sendable {
        private let channels = Mutex<[any Channel]>([])
        func add(_ channel: any Channel) { channels.withLock { $0.append(channel) } }
        var all: [any Channel] { channels.withLock { $0 } }
    }

    let path: String
    private let server: any Channel
    private let children: Children

    private init(path: String, server: any Channel, children: Children) {
        self.path = path
        self.server = server
        self.children = children
    }

    static func start(at path: String, script: AgentFuzzScript, group: any EventLoopGroup, stats: AgentFuzzPeerStats) async throws -> AgentFuzzPeer {
        unlink(path)
        let children = Children()
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                children.add(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AgentFuzzPeerHandler(script: script, stats: stats))
                }
            }
            .bind(unixDomainSocketPath: path).get()
        return AgentFuzzPeer(path: path, server: server, children: children)
    }

    func stop() async {
        try? await server.close()
        for child in children.all { try? await child.close() }
        unlink(path)
    }
}

private final class AgentFuzzPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let floodCap = 1 << 30

    private let script: AgentFuzzScript
    private let stats: AgentFuzzPeerStats
    private var awaitingLine: Bool
    private var line: [UInt8] = []
    private var decoder = AgentFrameDecoder()
    private var answered = 0
    private var flooding: (bytes: [UInt8], frames: Int)?
    private var flooded = 0

    init(script: AgentFuzzScript, stats: AgentFuzzPeerStats) {
        self.script = script
        self.stats = stats
        awaitingLine = script.handshakeReply != nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if !awaitingLine { greet(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        var bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        if awaitingLine {
            line += bytes
            guard let newline = line.firstIndex(of: UInt8(ascii: "\n")) else { return }
            bytes = Array(line[(newline + 1)...])
            awaitingLine = false
            write(script.handshakeReply ?? [], frames: 0, context: context)
            greet(context: context)
        }
        decoder.append(bytes)
        while context.channel.isActive, let message = try? decoder.next() {
            switch message {
            case .run(let request): answer(request: request, resume: nil, context: context)
            case .resume(let resume): answer(request: nil, resume: resume, context: context)
            default: break
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func greet(context: ChannelHandlerContext) {
        write(script.greeting, frames: script.frames, context: context)
        if script.replies.isEmpty { finish(context: context) }
    }

    private func answer(request: RunRequest?, resume: AgentResume?, context: ChannelHandlerContext) {
        guard answered < script.replies.count else { return }
        let reply = script.replies[answered]
        answered += 1
        switch reply {
        case .bytes(let bytes):
            write(bytes, frames: 0, context: context)
        case .echoResult(let copies, let stdout):
            guard let frame = try? AgentFuzzFrames.frame(AgentFuzzFrames.result(id: request?.id ?? "no-request", stdout: stdout)) else { return }
            for _ in 0..<copies { write(frame, frames: 1, context: context) }
        case .echoResumeHello:
            guard let frame = try? AgentFuzzFrames.frame(AgentFuzzFrames.hello(nonce: resume?.nonce)) else { return }
            write(frame, frames: 1, context: context)
        }
        if answered == script.replies.count { finish(context: context) }
    }

    private func finish(context: ChannelHandlerContext) {
        switch script.after {
        case .close:
            // After what was written has left: closing with writes pending would drop them.
            context.writeAndFlush(wrapOutboundOut(ByteBuffer())).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .hold: break
        case .flood(let bytes, let frames):
            flooding = (bytes, frames)
            pump(context: context)
        case .drip(let bytes, let interval):
            drip(bytes, every: interval, context: context)
        }
    }

    private func pump(context: ChannelHandlerContext) {
        guard let (bytes, frames) = flooding else { return }
        while context.channel.isActive && context.channel.isWritable && flooded < Self.floodCap {
            context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            flooded += bytes.count
            stats.wrote(frames: frames, bytes: bytes.count, flood: true)
        }
        context.flush()
    }

    private func drip(_ bytes: [UInt8], every interval: TimeAmount, context: ChannelHandlerContext) {
        guard context.channel.isActive, flooded < Self.floodCap else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
        flooded += bytes.count
        stats.wrote(frames: 1, bytes: bytes.count, flood: true)
        _ = context.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            self.drip(bytes, every: interval, context: context)
        }
    }

    private func write(_ bytes: [UInt8], frames: Int, context: ChannelHandlerContext) {
        guard !bytes.isEmpty, context.channel.isActive else { return }
        var position = 0
        while position < bytes.count && context.channel.isActive {
            let size = min(script.chunk, bytes.count - position)
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes[position..<position + size])), promise: nil)
            position += size
        }
        stats.wrote(frames: frames, bytes: bytes.count, flood: false)
    }
}

/// The process's resident set size now, from /proc/self/statm ("size resident ..." in pages); 0 elsewhere.
func residentBytes() -> Int {
    let descriptor = open("/proc/self/statm", O_RDONLY)
    guard descriptor >= 0 else { return 0 }
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: 256)
    let count = read(descriptor, &bytes, bytes.count)
    guard count > 0 else { return 0 }
    let fields = String(decoding: bytes[..<count], as: UTF8.self).split(separator: " ")
    guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
