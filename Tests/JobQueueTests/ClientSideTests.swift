import Testing

@testable import JobQueue

/// The platform's side of the contract, as `codebench-worker submit` uses it: a job written with
/// ``JobRequest/payload`` is read back by the worker's parser unchanged, and ``StatusListReader`` reads
/// exactly what ``JobQueue/finish(_:outcome:)`` pushes.
@Suite("The client side of the wire contract")
struct ClientSideTests {
    static let jobs: [JobRequest] = [
        JobRequest(id: "666", workload: .shell(command: "uname -a")),
        JobRequest(id: "p", workload: .program(language: .python, source: "print(input())"), stdin: Array("hi\n".utf8),
                   timeoutMilliseconds: 5000,
                   limits: .init(wallTimeMilliseconds: 2000, memoryBytes: 64 << 20, processes: 16, outputBytes: 4096, memoryMiB: 64),
                   network: true),
        JobRequest(id: "q\"uote\\s ✓", workload: .shell(command: "sh -c 'echo \"hi\"; exit 4'"), limits: .init(memoryBytes: 32 << 20)),
    ]

    @Test(arguments: jobs)
    func aPayloadReadsBackAsTheSameJob(_ job: JobRequest) throws {
        #expect(try JobParser().parse(job.payload).get() == job)
    }

    @Test func theReaderReadsWhatFinishPushes() async throws {
        try await withQueueRedis { redis in
            let queue = redis.queue("w1")
            for (index, outcome) in [
                JobOutcome.done(stdout: Array("out\n".utf8), stderr: [], result: JobResultRecord(verdict: "ok", exitCode: 0)),
                .failed(reason: "time limit of 1 s exceeded", result: JobResultRecord(verdict: "time_limit")),
            ].enumerated() {
                let job = JobRequest(id: "read-\(index)", workload: .shell(command: "true"))
                try await redis.push(job.payload)
                let claimed = try #require(try await queue.claim(timeout: .seconds(2)))
                try await queue.publish(.received, for: claimed)
                try await queue.publish(.running, for: claimed)
                try await queue.finish(claimed, outcome: outcome)

                var reader = StatusListReader()
                var events: [StatusListReader.Event] = []
                for element in try await redis.list(job.id) { events.append(reader.read(element)) }
                #expect(events.prefix(2) == [.progress(.received), .progress(.running)])
                guard case .finished(let report) = events.last else { Issue.record("not finished: \(events)"); continue }
                switch (report, outcome) {
                case (.done(let stdout, let stderr, _), .done):
                    #expect(stdout == "out\n" && stderr == "")
                    #expect(report.result?.exitCode == 0)
                case (.failed(let reason, _), .failed):
                    #expect(reason == "time limit of 1 s exceeded")
                    #expect(report.result?.verdict == "time_limit")
                default:
                    Issue.record("read \(report) for \(outcome)")
                }
                #expect(report.result?.id == job.id)
            }
        }
    }

    @Test func elementsThatAreNotStatusesAreFlagged() {
        var reader = StatusListReader()
        #expect(reader.read("platform-data") == .unexpected("platform-data"))
        #expect(reader.read("failed") == .pending)
        #expect(reader.read("reason") == .pending)
        #expect(reader.read("{}") == .finished(.failed(reason: "reason", resultJSON: "{}")))
    }
}
