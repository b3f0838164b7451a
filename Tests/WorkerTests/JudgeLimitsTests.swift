import Foundation
import Testing

@testable import Worker

/// The limits judge mode added, end to end in real VMs: the file-size limit of a case and of a plain job,
/// and the compile's own wall time. One worker, three jobs.
@Suite("Judge mode limits end to end", .serialized)
struct JudgeLimitsTests {
    /// `exec`, so the writer itself is the step's process and its SIGXFSZ is the step's end (a shell
    /// would survive its child's signal and exit 153).
    static let writer = #"exec head -c "$1" /dev/zero > out.bin"#

    @Test("max_file_size_mb: a write past it is SIGXFSZ (runtime_error, signal 25), one below it is accepted; compile_wall_time_ms stops a compile long before the run's wall time")
    func fileSizeAndCompileTime() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(try JudgeJobTests.payload([
                "id": "fsize", "command": Self.writer, "limits": ["max_file_size_mb": 1],
                "tests": [["name": "past", "args": ["2097152"]], ["name": "below", "args": ["524288"]]],
            ]))
            try harness.push(try JudgeJobTests.payload([
                "id": "fsize-plain", "command": Self.writer, "args": ["2097152"], "limits": ["max_file_size_mb": 1],
            ]))
            // Template-heavy enough that g++ under TCG takes seconds; the run's own wall time is far longer.
            let regex = "#include <iostream>\n#include <regex>\nint main() { std::cout << std::regex_match(\"aaa\", std::regex(\"a+\")) << '\\n'; }\n"
            try harness.push(try JudgeJobTests.payload([
                "id": "slowcc", "language": "cpp", "code": regex,
                "limits": ["compile_wall_time_ms": 300, "wall_time_ms": 20000],
            ]))

            let judged = WorkerHarness.result(try await harness.readStatuses("fsize"))
            #expect(JudgeJobTests.verdicts(judged) == ["runtime_error", "accepted"], "\(judged)")
            let past = JudgeJobTests.cases(judged).first ?? [:]
            #expect(past["signal"] as? Int == 25, "\(past)")
            #expect((past["message"] as? String)?.contains("SIGXFSZ") == true, "\(past)")
            #expect((past["message"] as? String)?.hasSuffix("file size limit of 1 MiB exceeded") == true, "\(past)")
            #expect((judged["limits"] as? [String: Any])?["max_file_size_bytes"] as? Int == 1 << 20)

            let plain = try await harness.readStatuses("fsize-plain")
            #expect(plain.prefix(3) == ["received", "running", "done"], "\(plain)")
            let plainResult = WorkerHarness.result(plain)
            #expect(plainResult["signal"] as? Int == 25, "\(plainResult)")
            #expect(plainResult["verdict"] as? String == "runtime_error")

            let slow = try await harness.readStatuses("slowcc")
            #expect(slow.prefix(3) == ["received", "running", "failed"], "\(slow)")
            #expect(slow.dropFirst(3).first == "compile error: compilation exceeded the time limit of 300 ms", "\(slow)")
            let slowResult = WorkerHarness.result(slow)
            #expect(slowResult["verdict"] as? String == "compile_error")
            #expect((slowResult["limits"] as? [String: Any])?["compile_wall_time_ms"] as? Int == 300)
        }
    }
}
