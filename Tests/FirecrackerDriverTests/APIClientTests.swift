import TestSupport
import FirecrackerDriver
import Foundation
import Testing

@Suite struct APIClientTests {
    private func withPeer<T>(
        responder: @escaping FakeFirecracker.Responder = { _ in nil },
        _ body: (FakeFirecracker, FirecrackerAPIClient) async throws -> T
    ) async throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let peer = FakeFirecracker(apiSocketPath: directory.file("api.sock"), responder: responder)
        try await peer.start()
        do {
            let result = try await body(peer, FirecrackerAPIClient(socketPath: peer.apiSocketPath, requestTimeout: .seconds(10)))
            await peer.stop()
            return result
        } catch {
            await peer.stop()
            throw error
        }
    }

    @Test func configuresAndStartsAnInstanceWithDocumentedRequests() async throws {
        try await withPeer { peer, client in
            try await client.putLogger(FirecrackerLogger(logPath: "/run/x/log.fifo", level: .info))
            try await client.putMetrics(Metrics(metricsPath: "/run/x/metrics.fifo"))
            try await client.putMachineConfiguration(MachineConfiguration(vcpuCount: 2, memSizeMib: 256))
            try await client.putBootSource(BootSource(kernelImagePath: "/img/vmlinux", bootArgs: "console=ttyS0"))
            try await client.putDrive(Drive(driveId: "rootfs", pathOnHost: "/img/rootfs.ext4", isRootDevice: true, isReadOnly: true))
            try await client.putEntropyDevice()
            try await client.putVsock(Vsock(guestCid: 3, udsPath: peer.apiSocketPath + ".v"))
            #expect(try await client.describeInstance().state == "Not started")
            try await client.startInstance()
            #expect(try await client.describeInstance().state == "Running")
            #expect(try await client.version().firecrackerVersion == "1.16.1")

            let requests = peer.requests
            #expect(requests.map { "\($0.method) \($0.uri)" } == [
                "PUT /logger", "PUT /metrics", "PUT /machine-config", "PUT /boot-source", "PUT /drives/rootfs",
                "PUT /entropy", "PUT /vsock", "GET /", "PUT /actions", "GET /", "GET /version",
            ])
            let machine = try #require(requests.first { $0.uri == "/machine-config" })
            let decoded = try JSONSerialization.jsonObject(with: Data(machine.body)) as? [String: Any]
            #expect(decoded?["vcpu_count"] as? Int == 2)
            #expect(decoded?["mem_size_mib"] as? Int == 256)
            #expect(machine.headers["content-type"] == "application/json")
            #expect(machine.headers["content-length"] == String(machine.body.count))
            #expect(requests.first { $0.method == "PUT" && $0.uri == "/actions" }?.json == #"{"action_type":"InstanceStart"}"#)
            // A GET carries no body (Content-Length: 0), as Firecracker's parser expects.
            #expect(requests.first { $0.method == "GET" }?.body.isEmpty == true)
        }
    }

    @Test func aFaultMessageBecomesATypedError() async throws {
        let fault = "Invalid Memory Configuration: The memory size (MiB) is either 0, or not a multiple of the configured page size."
        try await withPeer(responder: { $0.uri == "/machine-config" ? .fault(status: 400, fault) : nil }) { _, client in
            let error = await #expect(throws: FirecrackerAPIError.self) {
                try await client.putMachineConfiguration(MachineConfiguration(vcpuCount: 1, memSizeMib: 0))
            }
            #expect(error?.code == .httpError)
            #expect(error?.status == 400)
            #expect(error?.faultMessage == fault)
            #expect(error?.description.contains(fault) == true)
            #expect(error?.description.contains("PUT /machine-config") == true)
        }
    }

    @Test func aPeerThatNeverAnswersTimesOut() async throws {
        try await withPeer(responder: { _ in .never }) { _, client in
            var client = client
            client.requestTimeout = .milliseconds(300)
            let started = ContinuousClock.now
            let error = await #expect(throws: FirecrackerAPIError.self) { try await client.startInstance() }
            #expect(error?.code == .timeout)
            // Bounded by the timeout, not by the peer: generous margin for a loaded 2-core machine.
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test func aPeerThatClosesMidReplyIsAnError() async throws {
        try await withPeer(responder: { _ in .closeMidReply }) { _, client in
            let error = await #expect(throws: FirecrackerAPIError.self) { _ = try await client.version() }
            #expect(error?.code == .connectionClosed)
            #expect(error?.description.contains("middle of the reply") == true)
        }
    }

    @Test func aMissingSocketIsAConnectFailure() async throws {
        let client = FirecrackerAPIClient(socketPath: "/tmp/fct-no-such-dir/api.sock", requestTimeout: .seconds(1))
        let error = await #expect(throws: FirecrackerAPIError.self) { try await client.startInstance() }
        #expect(error?.code == .connectFailed)
    }

    @Test func cancellationEndsAWaitingCall() async throws {
        try await withPeer(responder: { _ in .never }) { _, client in
            var client = client
            client.requestTimeout = .seconds(30)
            let task = Task { try await client.startInstance() }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            let started = ContinuousClock.now
            let error = await #expect(throws: FirecrackerAPIError.self) { try await task.value }
            #expect(error?.code == .cancelled)
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }
}
