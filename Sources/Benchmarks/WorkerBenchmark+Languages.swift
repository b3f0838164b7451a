import Foundation
import Languages
import Worker

extension WorkerBenchmark {
    /// Each language's hello world from the image's registry, one job at a time through the worker:
    /// enqueue-to-done p50 per language, and the output checked against the registry's.
    func languages(base: WorkerConfiguration, driver: WorkerBenchmarkTimingDriver, platform: WorkerBenchmarkPlatform) async throws {
        let registry = try WorkerAssembly.imageLanguages(base.imageDirectory)
        let jobs = options.languageJobs
        output("\nlanguages, each one's hello world, \(jobs) jobs one at a time through the worker")
        var configuration = base
        configuration.concurrency = 1
        // A TypeScript or Java compile under TCG takes tens of seconds: past the default wall maximum.
        configuration.maximumLimits.wallTimeMilliseconds = max(configuration.maximumLimits.wallTimeMilliseconds, 150_000)
        try await withWorker(configuration, driver: driver) { _ in
            for language in registry.languages {
                var latencies: [Duration] = []
                for i in 0..<jobs {
                    let id = "hello-\(language.name)-\(i)"
                    let start = ContinuousClock.now
                    try await platform.push(Self.helloJob(id: id, language: language))
                    let elements = try await platform.done(id, within: .seconds(180))
                    latencies.append(.now - start)
                    guard elements.first == language.hello.stdout else {
                        throw WorkerBenchmarkError(message: "\(language.name) printed \(elements.first ?? "nothing"), not \(language.hello.stdout)")
                    }
                }
                let version = language.version.map { " (\($0))" } ?? ""
                output("  \(language.name.padding(toLength: 11, withPad: " ", startingAt: 0)) \(WorkerBenchmarkSample(latencies).summary)\(version)")
            }
            _ = driver.takeSpans()
        }
    }

    static func helloJob(id: String, language: LanguageDefinition) -> String {
        let object: [String: Any] = ["id": id, "language": language.name, "code": language.hello.source, "timeout_ms": 150_000]
        return String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}
