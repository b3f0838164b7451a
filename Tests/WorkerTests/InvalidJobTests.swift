import Foundation
import TestSupport
import Testing

@testable import Worker

@Suite("Worker rejects bad input precisely", .serialized)
struct InvalidJobTests {
    @Test("every bad job with a readable id gets failed + the parser's reason on its own list, and no VM")
    func badJobs() async throws {
        // The parser knows the languages of the image the worker boots.
        let image = try GuestImageFixture.require()
        let known = try WorkerAssembly.imageLanguages((image.kernelPath as NSString).deletingLastPathComponent).names
            .joined(separator: ", ")
        let cases: [(id: String, payload: String, reason: String)] = [
            ("b1", #"{"id":"b1","command":42}"#, "invalid job: field 'command' must be a string, got number"),
            ("b2", #"{"id":"b2"}"#, "invalid job: one of the fields 'command' or 'code' is required"),
            ("b3", #"{"id":"b3","command":"true","code":"x"}"#, "invalid job: fields 'command' and 'code' are mutually exclusive"),
            ("b4", #"{"id":"b4","language":"cobol","code":"x"}"#, "invalid job: field 'language' has unknown language 'cobol' (known: \(known))"),
            ("b5", #"{"id":"b5","code":"print(1)"}"#, "invalid job: field 'language' is required with 'code'"),
            ("b6", #"{"id":"b6","command":"true","timeout_ms":-5}"#, "invalid job: field 'timeout_ms' must be a positive integer, got -5"),
        ]
        try await WorkerHarness.with { harness in
            for job in cases { try harness.push(job.payload) }
            for job in cases {
                let elements = try await harness.readStatuses(job.id)
                #expect(elements.prefix(2) == ["failed", job.reason], "job \(job.id)")
            }
            #expect(harness.driver.total == 0)
        }
    }

    @Test("values the guest agent would refuse are refused through the worker with the field named, and no VM boots")
    func refusedBeforeBoot() async throws {
        let cases: [(id: String, payload: String, reason: String)] = [
            ("r1", #"{"id":"r1","command":"true","limits":{"memory_bytes":1}}"#,
             "invalid job: field 'limits.memory_bytes' must be at least 16777216"),
            ("r2", #"{"id":"r2","command":"echo a\u0000b"}"#, "invalid job: field 'command' must not contain a NUL byte"),
        ]
        try await WorkerHarness.with { harness in
            for job in cases { try harness.push(job.payload) }
            for job in cases {
                let elements = try await harness.readStatuses(job.id)
                #expect(elements.prefix(2) == ["failed", job.reason], "job \(job.id)")
                #expect(WorkerHarness.result(elements)["message"] as? String == job.reason, "job \(job.id)")
            }
            #expect(harness.driver.total == 0)
        }
    }

    @Test("a payload without a readable id goes to jobs:invalid with its reason, and the worker goes on")
    func noID() async throws {
        try await WorkerHarness.with { harness in
            try harness.push("not json at all")
            try harness.push(#"{"command":"true"}"#)
            try harness.push(#"{"id":"after","command":"echo still here"}"#)
            let elements = try await harness.readStatuses("after")
            #expect(elements.prefix(4) == ["received", "running", "done", "still here\n"])
            let invalid = try harness.redisCLI("LRANGE", "jobs:invalid", "0", "-1")
            #expect(invalid.contains("payload is not valid JSON"))
            #expect(invalid.contains("field 'id' is missing"))
        }
    }
}
