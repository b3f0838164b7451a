import Foundation
import RedisClient
import TestSupport
import Testing

/// The dashboard of a real `codebench-worker run` (real redis-server, real VM), loaded in a real headless Chromium:
/// what a person sees, that hostile ids stay text, and that its script runs without a console error.
@Suite("Dashboard in headless Chromium", .serialized)
struct DashboardBrowserTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let hostileID = "<img src=x onerror=alert(1)>"

    /// The port `run` bound for `status-address=127.0.0.1:0`, from its log line `status server listening`.
    static func statusPort(of worker: WorkerProcess) async throws -> Int {
        var port: Int?
        _ = await eventually(timeout: .seconds(30)) {
            let line = worker.log.split(separator: "\n").first { $0.contains("status server listening") }
            port = line.flatMap { $0.split(separator: ":").last }.flatMap { Int($0.prefix { $0.isNumber }) }
            return port != nil
        }
        return try #require(port, "no status server line in the worker's log:\n\(worker.log.suffix(3000))")
    }

    /// Console lines Chromium logs with `--enable-logging=stderr` that say the page's script failed or was refused.
    static func consoleErrors(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { line in
            line.contains("CONSOLE") && (line.contains("Uncaught") || line.contains("Refused") || line.contains(":ERROR:")
                || line.localizedCaseInsensitiveContains("error"))
        }
    }

    /// `chromium --headless=new --dump-dom url`: the DOM after the page ran for `budget` of virtual time.
    static func dumpDOM(_ chromium: String, _ url: String, budget: Int = 8_000) async throws -> ChildProcessResult {
        let profile = NSTemporaryDirectory() + "/chromium-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        return try await runChildProcess(chromium, [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--user-data-dir=\(profile)",
            "--no-first-run", "--virtual-time-budget=\(budget)", "--dump-dom", url,
        ])
    }

    @Test("the page shows the worker, its finished jobs and the fleet's hostile ids as text, with no console error")
    func dashboardInChromium() async throws {
        guard let chromium = Self.chromium else {
            print("DashboardBrowserTests skipped: chromium is not installed (scripts/setup installs it with apt)")
            return
        }
        try await ReliabilityTests.Fleet.with { fleet in
            let worker = try fleet.worker("dashboard-worker")
            try await fleet.push(#"{"id":"shown","command":"echo hi"}"#)
            _ = try await fleet.waitFor("shown") { $0.contains("done") }
            // Hostile ids where the page shows ids: a running job and a dead letter.
            try await fleet.push(#"{"id":"\#(Self.hostileID)","command":"sleep 60"}"#)
            _ = try await fleet.waitFor(Self.hostileID) { $0.contains("running") }
            _ = try await fleet.client.send(RedisCommand("RPUSH", "jobs:dead", #"{"id":"\#(Self.hostileID) dead","command":"true"}"#))
            let port = try await Self.statusPort(of: worker)

            let result = try await Self.dumpDOM(chromium, "http://127.0.0.1:\(port)/")
            let dom = result.stdout
            #expect(result.status == 0, "chromium: \(result.stderr.suffix(3000))")
            #expect(dom.contains("<code id=\"observer\">dashboard-worker</code>"), "\(dom)")
            let finished = dom.firstMatch(of: /id="finished">(\d+)</).flatMap { Int($0.1) }
            #expect((finished ?? 0) >= 1, "finished jobs: \(String(describing: finished))")
            #expect(dom.contains("<code>&lt;img src=x onerror=alert(1)&gt;</code> for "), "the running job's id as text")
            #expect(dom.contains("<code>&lt;img src=x onerror=alert(1)&gt; dead</code>"), "the dead letter's id as text")
            #expect(!dom.contains("<img"), "markup from Redis was parsed")
            // Several scrapes of /metrics within the budget: the throughput sparkline has points.
            let throughput = dom.firstMatch(of: /id="throughput-spark"[^>]*><polyline points="([^"]*)"/).map { String($0.1) }
            #expect(throughput?.isEmpty == false, "throughput sparkline: \(String(describing: throughput))")
            #expect(dom.contains(#"<div id="problem" class="error"></div>"#), "the page could not read the fleet or the metrics")
            #expect(Self.consoleErrors(result.stderr).isEmpty, "\(Self.consoleErrors(result.stderr))")
        }
    }
}
