import Foundation
import TestSupport
import Testing

@testable import Worker

/// Jobs written by an attacker, through the wire contract, a real redis-server, the worker and real VMs: each must get
/// the outcome below, within its limits, and leave the worker able to run the next job. The kinds of payload other
/// code runners keep in their test folders: filling disks, leaving files for the next job, fork bombs, process and
/// thread floods, floods of jobs, network attempts, runaway output, ignored signals, daemons that try to outlive the job.
@Suite("Hostile jobs", .serialized)
struct HostileJobTests {
    /// What a hostile job must end with.
    struct Expectation: Sendable, CustomTestStringConvertible {
        var name: String
        var payload: String
        /// Acceptable (status, verdict) pairs: some attacks end one of two legitimate ways depending on which limit
        /// the kernel hits first (a tmpfs full or the memory limit), never as a VM failure.
        var outcomes: [(status: String, verdict: String)]
        /// The guest's own wall time must stay under this (the limit plus one second): a job never outlives its limit.
        var maximumWallMilliseconds: Int
        /// Something that must appear in stdout or stderr, when the attack leaves a trace there.
        var trace: String?
        var testDescription: String { name }
    }

    static let cases: [Expectation] = [
        Expectation(
            name: "fork bomb", payload: #"{"id":"fork-bomb","command":"b(){ b|b& }; b","timeout_ms":3000,"limits":{"processes":32}}"#,
            outcomes: [("failed", "time_limit"), ("done", "ok"), ("done", "runtime_error")], maximumWallMilliseconds: 4000),
        Expectation(
            name: "process flood",
            payload: #"{"id":"procs","language":"python","code":"import os, time\nn = 0\ntry:\n    for _ in range(100):\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('capped' if n < 16 else 'not capped', 'by errno', e.errno)\n","timeout_ms":20000,"limits":{"processes":16}}"#,
            // Generous time: forks are slow under TCG on a loaded host, and the cap, not the clock, must stop it.
            outcomes: [("done", "ok")], maximumWallMilliseconds: 21000, trace: "capped by errno 11"),
        Expectation(
            name: "bash process flood", payload: #"{"id":"bashprocs","command":"for i in $(seq 200); do sleep 30 & done; wait","timeout_ms":3000,"limits":{"processes":16}}"#,
            outcomes: [("failed", "time_limit")], maximumWallMilliseconds: 4000),
        Expectation(
            name: "thread flood",
            payload: #"{"id":"threads","language":"python","code":"import threading,time\nfor i in range(1000):\n    threading.Thread(target=time.sleep,args=(30,),daemon=True).start()\n","timeout_ms":20000,"limits":{"processes":16}}"#,
            outcomes: [("done", "runtime_error")], maximumWallMilliseconds: 21000, trace: "can't start new thread"),
        Expectation(
            name: "work directory fill", payload: #"{"id":"disk","command":"dd if=/dev/zero of=big bs=1M count=4096","timeout_ms":8000,"limits":{"memory_mb":64}}"#,
            outcomes: [("done", "runtime_error"), ("failed", "memory_limit")], maximumWallMilliseconds: 9000),
        Expectation(
            name: "shared /tmp fill", payload: #"{"id":"tmpfill","command":"dd if=/dev/zero of=/tmp/big bs=1M count=4096","timeout_ms":8000,"limits":{"memory_mb":64}}"#,
            outcomes: [("done", "runtime_error"), ("failed", "memory_limit")], maximumWallMilliseconds: 9000),
        Expectation(
            name: "/dev/shm fill", payload: #"{"id":"shmfill","command":"dd if=/dev/zero of=/dev/shm/big bs=1M count=4096","timeout_ms":8000,"limits":{"memory_mb":64}}"#,
            outcomes: [("done", "runtime_error"), ("failed", "memory_limit")], maximumWallMilliseconds: 9000),
        Expectation(
            name: "memory bomb", payload: #"{"id":"membomb","language":"python","code":"x = bytearray(1 << 30)","limits":{"memory_mb":64}}"#,
            outcomes: [("failed", "memory_limit"), ("done", "runtime_error")], maximumWallMilliseconds: 11000),
        Expectation(
            name: "network without permission",
            payload: #"{"id":"netless","language":"python","code":"import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)","timeout_ms":15000}"#,
            outcomes: [("done", "runtime_error")], maximumWallMilliseconds: 16000, trace: "Network is unreachable"),
        Expectation(
            name: "signals ignored", payload: #"{"id":"stubborn","command":"trap '' TERM INT HUP QUIT; sleep 30","timeout_ms":2000}"#,
            outcomes: [("failed", "time_limit")], maximumWallMilliseconds: 3000),
        Expectation(
            name: "runaway output", payload: #"{"id":"yes","command":"yes flood","timeout_ms":20000}"#,
            outcomes: [("failed", "output_limit")], maximumWallMilliseconds: 21000),
        Expectation(
            name: "daemon outliving its job", payload: #"{"id":"daemon","command":"setsid sleep 60 >/dev/null 2>&1 < /dev/null & nohup sleep 60 >/dev/null 2>&1 & echo started","timeout_ms":5000}"#,
            outcomes: [("done", "ok")], maximumWallMilliseconds: 6000, trace: "started"),
        Expectation(
            name: "agent and init attacked", payload: #"{"id":"pid1","command":"kill -9 1; kill -9 -1; echo survived","timeout_ms":5000}"#,
            outcomes: [("done", "ok"), ("done", "runtime_error")], maximumWallMilliseconds: 6000),
    ]

    @Test(arguments: cases)
    func hostileJobGetsItsOutcome(_ expectation: Expectation) async throws {
        try await WorkerHarness.with { harness in
            try harness.push(expectation.payload)
            let id = try #require(Self.id(of: expectation.payload))
            let elements = try await harness.readStatuses(id)
            try #require(elements.count >= 3, "got \(elements)")
            let status = elements.first { $0 == "done" || $0 == "failed" } ?? "none"
            let result = WorkerHarness.result(elements)
            let verdict = result["verdict"] as? String ?? "none"
            #expect(
                expectation.outcomes.contains { $0.status == status && $0.verdict == verdict },
                "\(expectation.name): got \(status)/\(verdict): \(elements.map { String($0.prefix(200)) })")
            if let wall = result["wall_ms"] as? Int {
                #expect(wall <= expectation.maximumWallMilliseconds, "\(expectation.name): ran \(wall) ms")
            }
            if let trace = expectation.trace {
                #expect(elements.contains { $0.contains(trace) }, "\(expectation.name): no '\(trace)' in \(elements.map { String($0.prefix(300)) })")
            }

            // The worker goes on: the next job runs normally, and no VM is left.
            try harness.push(#"{"id":"after-\#(id)","command":"echo ok"}"#)
            let after = try await harness.readStatuses("after-\(id)")
            #expect(after.prefix(4) == ["received", "running", "done", "ok\n"])
            #expect(await eventually(timeout: .seconds(10)) { harness.driver.live == 0 })
        }
    }

    /// Files a job leaves in every writable place are gone for the next job: each job has its own VM.
    @Test func filesLeftBehindAreNotSeenByTheNextJob() async throws {
        try await WorkerHarness.with { harness in
            try harness.push(#"{"id":"leave","command":"for d in /tmp /dev/shm \"$HOME\" .; do echo secret > \"$d/leftover\" && echo wrote $d; done"}"#)
            let left = try await harness.readStatuses("leave")
            #expect(left.prefix(3) == ["received", "running", "done"])
            #expect(left.count > 3 && left[3].contains("wrote /tmp") && left[3].contains("wrote /dev/shm"), "\(left)")
            try harness.push(#"{"id":"look","command":"ls /tmp/leftover /dev/shm/leftover \"$HOME/leftover\" ./leftover 2>&1; cat /tmp/leftover 2>/dev/null; exit 0"}"#)
            let look = try await harness.readStatuses("look")
            #expect(look.prefix(3) == ["received", "running", "done"])
            #expect(look.count > 3 && !look[3].contains("secret"), "\(look)")
            #expect(look.count > 3 && look[3].components(separatedBy: "No such file or directory").count - 1 == 4, "\(look)")
        }
    }

    /// Thirty jobs pushed at once on a worker with two slots: all end, never more than two VMs at a time.
    @Test func aFloodOfJobsIsRunTwoAtATime() async throws {
        try await WorkerHarness.with(configure: { $0.concurrency = 2 }) { harness in
            let count = 30
            for index in 0..<count {
                try harness.push(#"{"id":"flood-\#(index)","command":"echo \#(index)"}"#)
            }
            for index in 0..<count {
                let elements = try await harness.readStatuses("flood-\(index)")
                #expect(elements.prefix(4) == ["received", "running", "done", "\(index)\n"])
            }
            #expect(harness.driver.peak <= 2)
            #expect(harness.driver.total == count)
        }
    }

    static func id(of payload: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else { return nil }
        return object["id"] as? String
    }
}
