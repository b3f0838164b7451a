import Foundation
import TestSupport
import Testing

/// `codebench-worker status` and `requeue-dead`, the binary, against a fleet of two worker processes sharing one
/// redis-server, with a job dead-lettered for real (its worker SIGKILLed mid-job).
@Suite("Fleet status and requeue-dead on two workers", .serialized)
struct FleetCommandTests {
    /// `status --json`, parsed.
    static func status(_ fleet: ReliabilityTests.Fleet) async throws -> [String: Any] {
        let result = try await runCodebenchWorker(["status", "--json", "--redis-url", fleet.redis.url])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        return try #require(object, "status --json printed \(result.stdout)")
    }

    static func workers(_ status: [String: Any]) -> [[String: Any]] {
        status["workers"] as? [[String: Any]] ?? []
    }

    static func depth(_ status: [String: Any], role: String, name: String? = nil) -> Int? {
        (status["queues"] as? [[String: Any]])?.first { $0["role"] as? String == role && (name == nil || $0["name"] as? String == name) }?[
            "depth"] as? Int
    }

    @Test("status lists both workers, their running job and the dead letter; requeue-dead puts it back and it runs to done")
    func statusAndRequeueDead() async throws {
        try await ReliabilityTests.Fleet.with { fleet in
            // The first delivery that ends with its worker's death dead-letters the job.
            let settings = ["max-deliveries": "1"]
            let poison = #"{"id":"poison","command":"sleep 1; echo back again"}"#
            try await fleet.push(poison)
            let victim = try fleet.worker("victim", settings: settings)
            _ = try await fleet.waitFor("poison") { $0.contains("running") }
            await victim.kill()
            _ = try fleet.worker("fleet-a", settings: settings)
            _ = try fleet.worker("fleet-b", settings: settings)
            let abandoned = try await fleet.waitFor("poison") { $0.contains("failed") }
            #expect(abandoned.contains("abandoned after 1 attempts"), "\(abandoned)")
            #expect(try await fleet.list("jobs:dead") == [poison])

            // One worker busy, so a running job shows with its age.
            try await fleet.push(#"{"id":"long","command":"sleep 60"}"#)
            _ = try await fleet.waitFor("long") { $0.contains("running") }
            var status: [String: Any] = [:]
            let settled = try await eventually(timeout: .seconds(30)) {
                status = try await Self.status(fleet)
                let workers = Self.workers(status)
                return workers.map { $0["id"] as? String } == ["fleet-a", "fleet-b"] && workers.allSatisfy { ($0["vmm"] as? String)?.hasPrefix("qemu") == true }
            }
            #expect(settled, "status: \(status)")
            for worker in Self.workers(status) {
                #expect(worker["alive"] as? Bool == true)
                #expect(worker["concurrency"] as? Int == 1)
                #expect((worker["host"] as? String)?.isEmpty == false)
                #expect((worker["pid"] as? Int ?? 0) > 0)
                #expect((worker["heartbeat_age_ms"] as? Int).map { $0 >= 0 && $0 < 5_000 } == true, "\(worker)")
            }
            let busy = Self.workers(status).filter { ($0["jobs"] as? [[String: Any]])?.isEmpty == false }
            #expect(busy.count == 1, "\(status)")
            let job = try #require((busy.first?["jobs"] as? [[String: Any]])?.first)
            #expect(job["id"] as? String == "long")
            #expect((job["age_ms"] as? Int).map { $0 >= 0 && $0 < 120_000 } == true, "\(job)")
            let busyID = try #require(busy.first?["id"] as? String)
            #expect(Self.depth(status, role: "processing", name: "jobs:processing:\(busyID)") == 1)
            #expect(Self.depth(status, role: "intake") == 0)
            #expect(Self.depth(status, role: "invalid") == 0)
            #expect(Self.depth(status, role: "dead") == 1)
            let letters = status["dead_letters"] as? [[String: Any]] ?? []
            #expect(letters.count == 1)
            #expect(letters.first?["id"] as? String == "poison")
            #expect(letters.first?["reason"] as? String == "abandoned after 1 attempts")
            #expect(letters.first?["worker_id"] as? String == "victim")
            #expect((letters.first?["dead_at_ms"] as? Int ?? 0) > 0)

            // The text form, for people.
            let text = try await runCodebenchWorker(["status", "--redis-url", fleet.redis.url])
            #expect(text.stdout.contains("running long for"), "\(text.stdout)")
            #expect(text.stdout.contains("poison  abandoned after 1 attempts"), "\(text.stdout)")

            let unknown = try await runCodebenchWorker(["requeue-dead", "--id", "nosuch", "--redis-url", fleet.redis.url])
            #expect(unknown.status == 1)
            #expect(unknown.stderr.contains("no dead-lettered job has id 'nosuch'"), "\(unknown.stderr)")
            #expect(try await fleet.list("jobs:dead") == [poison])

            let moved = try await runCodebenchWorker(["requeue-dead", "--id", "poison", "--redis-url", fleet.redis.url])
            #expect(moved.status == 0, "\(moved.stderr)")
            #expect(moved.stdout == "requeued poison onto jobs\n")
            // A status list of its own: the retry's statuses, one terminal status.
            let elements = try await fleet.waitFor("poison") { $0.contains("done") }
            #expect(elements.prefix(4) == ["received", "running", "done", "back again\n"], "\(elements)")
            #expect(ReliabilityTests.terminalCount(elements) == 1)
            let after = try await Self.status(fleet)
            #expect(Self.depth(after, role: "dead") == 0)
            #expect((after["dead_letters"] as? [Any])?.isEmpty == true)
        }
    }
}
