import Foundation
import Testing

@testable import Worker

/// The seed's contract, end to end: real redis-server, real worker, real VMs.
@Suite("Worker end to end", .serialized)
struct SeedJobTests {
    @Test("the seed's exact RPUSH gives received, running, done, stdout, stderr and the result JSON on list 666")
    func seedJob() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"666","command":"uname -a"}"#)
            let elements = try await harness.readStatuses("666")
            try #require(elements.count == 6, "got \(elements)")
            #expect(Array(elements[0..<3]) == ["received", "running", "done"])
            #expect(elements[3].contains("Linux"))
            #expect(elements[4] == "")
            let result = WorkerHarness.result(elements)
            #expect(result["exit_code"] as? Int == 0)
            #expect(result["verdict"] as? String == "ok")
            #expect(result["worker_id"] as? String == harness.service.workerID)
            #expect((result["vmm"] as? String)?.hasPrefix("qemu") == true)
            #expect(result["wall_ms"] is Int)
            // The VM's host CPU: QEMU's start-up alone is over 20 ms, its launcher alone a few.
            #expect((result["host_cpu_ms"] as? Int ?? 0) > 20, "\(result)")
            // Nothing left behind: the list was consumed and the job left the processing list.
            #expect(try harness.redisCLI("LLEN", "jobs:processing:\(harness.service.workerID)").hasPrefix("0"))
        }
    }

    @Test("a status key prefix names the list a BLPOP reader waits on")
    func statusKeyPrefix() async throws {
        try await WorkerHarness.with(configure: { $0.statusKeyPrefix = "worker_job_status_" }) { harness in
            // The reader is already blocked when the job is pushed, as a platform would be.
            async let elements = harness.readStatuses("worker_job_status_p1")
            try await Task.sleep(for: .milliseconds(200))
            try harness.push(#"{"id":"p1","command":"echo prefixed"}"#)
            let got = try await elements
            #expect(got.prefix(4) == ["received", "running", "done", "prefixed\n"])
            #expect(try harness.redisCLI("EXISTS", "p1").hasPrefix("0"))
        }
    }

    @Test("a Python program prints 42")
    func python() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"7","language":"python","code":"print(6*7)"}"#)
            let elements = try await harness.readStatuses("7")
            #expect(elements.prefix(5) == ["received", "running", "done", "42\n", ""])
        }
    }

    @Test("a non-zero exit is done, with the exit code and stderr")
    func nonZeroExit() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"e3","command":"echo oops >&2; exit 3"}"#)
            let elements = try await harness.readStatuses("e3")
            #expect(elements.prefix(5) == ["received", "running", "done", "", "oops\n"])
            let result = WorkerHarness.result(elements)
            #expect(result["exit_code"] as? Int == 3)
            #expect(result["verdict"] as? String == "runtime_error")
        }
    }

    @Test("a job over its time limit fails with the limit in the reason")
    func timeLimit() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"slow","command":"sleep 30","timeout_ms":1000}"#)
            let elements = try await harness.readStatuses("slow")
            #expect(elements.prefix(4) == ["received", "running", "failed", "time limit of 1 s exceeded"])
            #expect(WorkerHarness.result(elements)["verdict"] as? String == "time_limit")
        }
    }

    @Test("network is refused when the operator does not allow it")
    func networkRefused() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"net","command":"true","network":true}"#)
            let elements = try await harness.readStatuses("net")
            #expect(elements.prefix(3) == ["received", "failed", "network access is not allowed on this worker"])
            #expect(harness.driver.total == 0, "no VM may boot for a refused job")
        }
    }

    @Test("with allow-network, a job that asks gets the egress proxy and nothing else")
    func networkAllowed() async throws {
        try await WorkerHarness.with(configure: { $0.allowNetwork = true }) { harness in
            // The proxy answers a CONNECT to the host's own Redis with 403; a job without network has no proxy.
            let probe = #"printf 'CONNECT 127.0.0.1:PORT HTTP/1.1\r\n\r\n' | timeout 20 bash -c 'exec 3<>/dev/tcp/10.0.2.100/3128; cat >&3; head -c 12 <&3'; echo; echo $https_proxy"#
                .replacingOccurrences(of: "PORT", with: String(harness.redis.port))
            func job(_ fields: [String: Any]) throws -> String {
                String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
            }
            try harness.push(try job(["id": "n1", "network": true, "command": probe]))
            try harness.push(try job(["id": "n2", "command": "echo [$https_proxy]"]))
            let allowed = try await harness.readStatuses("n1")
            #expect(allowed.prefix(4) == ["received", "running", "done", "HTTP/1.1 403\nhttp://10.0.2.100:3128\n"], "\(allowed)")
            let plain = try await harness.readStatuses("n2")
            #expect(plain.prefix(4) == ["received", "running", "done", "[]\n"], "\(plain)")
        }
    }
}
