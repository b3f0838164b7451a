import AgentProtocol
import Foundation
import Worker

extension WorkerBenchmark {
    /// The program both sides run: reads a number, prints its square.
    static let squareProgram = "import sys\nn = int(sys.stdin.read())\nprint(n * n)"

    /// One judge job of `options.judgeCases` cases next to as many separate jobs of the same program,
    /// through the same worker configuration (one VM at a time), in the same run: total wall time from the
    /// first push to the last terminal status, and VM boots, of each. Judge mode boots and compiles once;
    /// the separate jobs pay a boot each, which is what the issue's "at least 5x" is about.
    func judge(base: WorkerConfiguration, driver: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform) async throws {
        let cases = options.judgeCases
        output("\njudge mode, a Python program (stdin n, prints n*n): \(cases) cases in one job next to \(cases) jobs, 1 VM at a time")
        var configuration = base
        configuration.concurrency = 1
        configuration.judge.maximumTests = min(RequestRules.maximumTests, max(cases, configuration.judge.maximumTests))
        _ = driver.takeSpans()

        // All pushed at once, as a platform without judge mode would; the worker still runs one at a time.
        let (separate, separateBoots) = try await withWorker(configuration, driver: driver) { _ in
            let ids = (0..<cases).map { "sq-\($0)" }
            let start = ContinuousClock.now
            try await platform.push(ids.enumerated().map { i, id in Self.squareJob(id: id, stdin: i) })
            for (i, id) in ids.enumerated() {
                let elements = try await platform.done(id)
                guard elements.first == "\(i * i)\n" else {
                    throw WorkerBenchmarkError(message: "job \(id) printed \(elements.first ?? "nothing"), not \(i * i)")
                }
            }
            return (ContinuousClock.now - start, driver.takeSpans().count)
        }

        let (judged, judgedBoots, tests) = try await withWorker(configuration, driver: driver) { _ in
            let start = ContinuousClock.now
            try await platform.push(Self.squareJudgeJob(id: "sq-judge", cases: cases))
            let elements = try await platform.done("sq-judge")
            let elapsed = ContinuousClock.now - start
            let tests = try Self.judgedCases(elements.last ?? "", expected: cases)
            return (elapsed, driver.takeSpans().count, tests)
        }

        let separateSeconds = seconds(separate)
        let judgedSeconds = seconds(judged)
        output(String(format: "  %d separate jobs         total %7.2f s  %3d VM boots  (%.0f ms per job)",
            cases, separateSeconds, separateBoots, separateSeconds * 1000 / Double(cases)))
        output(String(format: "  1 judge job of %d cases  total %7.2f s  %3d VM boot   (%.0f ms per case; run alone p50 %.0f ms)",
            cases, judgedSeconds, judgedBoots, judgedSeconds * 1000 / Double(cases), tests.wallP50))
        output(String(format: "  speed-up %.1fx (the issue's target: at least 5x)", separateSeconds / judgedSeconds))
    }

    static func squareJob(id: String, stdin: Int) -> String {
        json(["id": id, "language": "python", "code": squareProgram, "stdin": "\(stdin)"])
    }

    static func squareJudgeJob(id: String, cases: Int) -> String {
        let tests = (0..<cases).map { ["stdin": "\($0)", "expected_output": "\($0 * $0)"] }
        return json(["id": id, "language": "python", "code": squareProgram, "tests": tests])
    }

    private static func json(_ object: [String: Any]) -> String {
        // Only strings, numbers and arrays of them: serialization cannot fail.
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    /// Checks that every case of the judge job was accepted (a fast wrong answer would flatter the figure)
    /// and returns the median of the cases' own wall times.
    static func judgedCases(_ resultJSON: String, expected: Int) throws -> (passed: Int, wallP50: Double) {
        let object = try JSONSerialization.jsonObject(with: Data(resultJSON.utf8)) as? [String: Any]
        let passed = object?["passed"] as? Int ?? -1
        guard passed == expected, object?["verdict"] as? String == "accepted" else {
            throw WorkerBenchmarkError(message: "the judge job passed \(passed) of \(expected) cases: \(resultJSON.prefix(500))")
        }
        let walls = (object?["tests"] as? [[String: Any]] ?? []).compactMap { $0["wall_ms"] as? Int }.map(Double.init).sorted()
        return (passed, nearestRankPercentile(walls, 50) ?? .nan)
    }
}
