import Observability
import Prometheus
import RedisClient
import TestSupport
import Testing
import Worker

/// A real worker with its status server on a free port, scraped over HTTP as an operator would.
@Suite("Worker metrics and health over HTTP", .serialized)
struct WorkerObservabilityTests {
    /// Starts a status server on a free port reading `health` and `registry`, then the harness with
    /// both, and closes the server whatever happens.
    static func withObservedWorker(
        configure: (inout WorkerConfiguration) -> Void = { _ in }, _ body: (WorkerHarness, StatusServer) async throws -> Void
    ) async throws {
        let registry = PrometheusCollectorRegistry()
        let health = WorkerHealth()
        // As `codebench-worker run` wires it.
        let server = try await StatusServer.start(
            configuration: StatusServerConfiguration(host: "127.0.0.1", port: 0), registry: registry,
            readiness: { Readiness(notReadyReason: health.notReadyReason, warning: health.warning) }, logger: WorkerHarness.logger)
        defer { server.close() }
        try await WorkerHarness.with(
            configure: configure, health: health, metricsFactory: PrometheusBackend.factory(registry: registry, timerBuckets: WorkerMetricNames.timerBuckets),
            services: [server]
        ) { harness in
            try await body(harness, server)
        }
    }

    static func readyz(_ server: StatusServer) async throws -> RawHTTPResponse {
        try await RawHTTPClient.get(port: server.port, "/readyz")
    }

    static func statuses(_ harness: WorkerHarness, _ id: String) async throws -> [String] {
        try await harness.client.send(RedisCommand("LRANGE", id, 0, -1), as: [String].self)
    }

    /// Polls `/readyz` until `predicate` holds or `timeout` passes; the last answer either way.
    static func readyz(
        _ server: StatusServer, within timeout: Duration, until predicate: (RawHTTPResponse) -> Bool
    ) async throws -> RawHTTPResponse {
        var last = try await readyz(server)
        _ = try await eventually(timeout: timeout) {
            last = try await readyz(server)
            return predicate(last)
        }
        return last
    }

    @Test("after one job /metrics counts it done, the VM gauge is back at 0, and boot and VM time were observed")
    func metricsAfterOneJob() async throws {
        try await Self.withObservedWorker { harness, server in
            let before = try await RawHTTPClient.get(port: server.port, "/metrics")
            #expect(before.body.contains("codebench_worker_jobs_total{ending=\"done\"} 0\n"), "every ending is exposed from the start")

            try harness.push(#"{"id":"m1","command":"echo measured"}"#)
            let elements = try await harness.readStatuses("m1")
            #expect(elements.prefix(4) == ["received", "running", "done", "measured\n"])

            let metrics = try await RawHTTPClient.get(port: server.port, "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
            let body = metrics.body
            #expect(body.contains("codebench_worker_jobs_total{ending=\"done\"} 1\n"))
            #expect(body.contains("codebench_worker_jobs_total{ending=\"failed\"} 0\n"))
            #expect(body.contains("codebench_worker_vms_running 0.0\n"))
            #expect(body.contains("codebench_worker_vm_seconds_count 1\n"))
            #expect(body.contains("codebench_worker_boot_seconds_count 1\n"))
            #expect(body.contains("codebench_worker_queue_seconds_count 1\n"))
            // The worker's own buckets, not the backend's 10 s ceiling.
            #expect(body.contains("codebench_worker_vm_seconds_bucket{le=\"120.0\"} 1\n"))
            #expect(body.contains("codebench_worker_redis_outages_total 0\n"))
        }
    }

    @Test("/healthz is 200; /readyz is 200 while running, 503 while Redis is down, 200 again after it restarts")
    func readinessFollowsRedis() async throws {
        try await Self.withObservedWorker { harness, server in
            let health = try await RawHTTPClient.get(port: server.port, "/healthz")
            #expect(health.status == 200)
            #expect(health.body == "ok\n")

            let ready = try await Self.readyz(server, within: .seconds(30)) { $0.status == 200 }
            try #require(ready.status == 200, "/readyz never became 200: \(ready.text)")
            #expect(ready.body == "ready\n")

            await harness.redis.kill()
            let down = try await Self.readyz(server, within: .seconds(30)) { $0.status == 503 }
            try #require(down.status == 503, "/readyz stayed \(down.text) with Redis down")
            #expect(down.body.hasPrefix("redis unreachable since "), "got \(down.body)")
            // Liveness is not readiness: the process is fine, only its Redis is not.
            #expect(try await RawHTTPClient.get(port: server.port, "/healthz").status == 200)

            try await harness.redis.restart()
            let back = try await Self.readyz(server, within: .seconds(60)) { $0.status == 200 }
            #expect(back.body == "ready\n", "/readyz is \(back.text) after Redis came back")
            let metrics = try await RawHTTPClient.get(port: server.port, "/metrics")
            #expect(metrics.body.contains("codebench_worker_redis_outages_total 1\n"))
        }
    }

    @Test("with qemu-jail=off a ready worker's /readyz is 200 and says QEMU runs unjailed; with the jail, plain ready")
    func unjailedQEMUIsInTheReadyBody() async throws {
        try await Self.withObservedWorker(configure: { $0.qemuJail = false }) { _, server in
            let ready = try await Self.readyz(server, within: .seconds(30)) { $0.status == 200 }
            try #require(ready.status == 200, "/readyz never became 200: \(ready.text)")
            #expect(ready.body == "ready (warning: qemu-jail=off: QEMU runs unjailed as root)\n")
        }
        try await Self.withObservedWorker { _, server in
            let ready = try await Self.readyz(server, within: .seconds(30)) { $0.status == 200 }
            #expect(ready.body == "ready\n")
        }
    }

    @Test("404 for an unknown path and 405 for POST, on the worker's own status server")
    func errors() async throws {
        try await Self.withObservedWorker { _, server in
            #expect(try await RawHTTPClient.get(port: server.port, "/status").status == 404)
            let post = try await RawHTTPClient.exchange(
                port: server.port, "POST /readyz HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\n\r\n")
            #expect(post.status == 405)
        }
    }

    @Test("/readyz is 503 draining while a running job finishes on graceful shutdown, then the server stops")
    func draining() async throws {
        try await Self.withObservedWorker { harness, server in
            try harness.push(#"{"id":"d1","command":"sleep 4; echo drained"}"#)
            // Polled with our client, not redis-cli: the VM spawned meanwhile can inherit redis-cli's
            // output pipe, and reading it would then wait for the VM to exit.
            let running = try await eventually(timeout: .seconds(30)) { try await Self.statuses(harness, "d1").contains("running") }
            try #require(running, "job d1 never reported running")
            let stopping = Task { await harness.stopWorker() }
            let draining = try await Self.readyz(server, within: .seconds(10)) { $0.body == "draining\n" }
            #expect(draining.status == 503)
            #expect(draining.body == "draining\n", "/readyz said \(draining.text) during the drain")
            let error = await stopping.value
            #expect(error == nil)
            #expect(try await Self.statuses(harness, "d1").contains("drained\n"), "the job finished during the drain")
            #expect(await RawHTTPClient.statusServerAnswers(port: server.port) == false, "the listener is closed")
        }
    }

    @Test("after graceful shutdown of the group, the status server stopped too")
    func stopsWithTheWorker() async throws {
        try await Self.withObservedWorker { harness, server in
            let health = try await RawHTTPClient.get(port: server.port, "/healthz")
            #expect(health.status == 200)
            let error = await harness.stopWorker()
            #expect(error == nil)
            #expect(await RawHTTPClient.statusServerAnswers(port: server.port) == false, "the listener is closed")
        }
    }
}
