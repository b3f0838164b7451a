import TestSupport
import EgressProxy
import Glibc
import Testing

extension SpawnSensitiveTests {
    /// The per-VM connection cap: flocked slot files, shared by all proxy processes of one VM.
    @Suite struct ConnectionSlotTests {
        @Test func refusesWith503WhileEverySlotIsHeldByALiveTunnel() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let server = try EchoServer()
            defer { server.stop() }
            var options = EgressOptions.local(port: server.port)
            options.slotsDirectory = directory.path
            options.maxConnections = 2

            var tunnels: [ServedConnection] = []
            for _ in 0..<2 {
                let tunnel = ServedConnection(options: options)
                try TestSocket.send(tunnel.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\n")
                #expect(try TestSocket.receiveHead(tunnel.fd).hasPrefix("HTTP/1.1 200 "))
                tunnels.append(tunnel)
            }

            let third = ServedConnection(options: options)
            try TestSocket.send(third.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\n")
            let response = try TestSocket.receiveTextToEnd(third.fd)
            #expect(response.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
            #expect(response.contains("at most 2"))
            #expect(await third.finish().status == .serviceUnavailable)

            // Ending one tunnel frees its slot for the next connection.
            shutdown(tunnels[0].fd, Int32(SHUT_WR))
            _ = try TestSocket.receiveToEnd(tunnels[0].fd)
            #expect(await tunnels[0].finish().outcome == .tunnel(.closed))
            let fourth = ServedConnection(options: options)
            try TestSocket.send(fourth.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\n")
            let fourthHead = try TestSocket.receiveHead(fourth.fd)
            #expect(fourthHead.hasPrefix("HTTP/1.1 200 "), "\(fourthHead)\(String(decoding: (try? TestSocket.receiveToEnd(fourth.fd)) ?? [], as: UTF8.self))")

            for tunnel in [tunnels[1], fourth] {
                shutdown(tunnel.fd, Int32(SHUT_WR))
                _ = try TestSocket.receiveToEnd(tunnel.fd)
                _ = await tunnel.finish()
            }
            #expect(server.acceptedCount == 3)
        }

        @Test func countsSlotsHeldByOtherProcessesThroughTheirLocks() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // What another proxy process holds: the test takes the flocks itself.
            let first = try ConnectionSlot.acquire(directory: directory.path, count: 2)
            let second = try ConnectionSlot.acquire(directory: directory.path, count: 2)
            #expect([first.index, second.index] == [0, 1])
            #expect(throws: ConnectionSlot.Failure.allTaken(count: 2)) { _ = try ConnectionSlot.acquire(directory: directory.path, count: 2) }

            var options = EgressOptions()
            options.slotsDirectory = directory.path
            options.maxConnections = 2
            let refused = ServedConnection(options: options)
            let response = try TestSocket.receiveTextToEnd(refused.fd)
            #expect(response.hasPrefix("HTTP/1.1 503 "), "refused before the request is even read")
            _ = await refused.finish()

            second.release()
            let admitted = ServedConnection(options: options)
            try TestSocket.send(admitted.fd, "CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n")
            let next = try TestSocket.receiveTextToEnd(admitted.fd)
            #expect(next.hasPrefix("HTTP/1.1 403 "), "with a slot free the request is read and judged")
            _ = await admitted.finish()
            first.release()

            for index in 0..<2 {
                var status = stat()
                #expect(lstat("\(directory.path)/slot-\(index)", &status) == 0)
                #expect(status.st_mode & 0o777 == 0o600)
                #expect(status.st_mode & S_IFMT == S_IFREG)
            }
        }

        @Test func createsAMissingSlotsDirectoryPrivateAndFailsClosedWhenItCannot() async throws {
            let parent = try TemporaryDirectory()
            defer { parent.remove() }
            let slot = try ConnectionSlot.acquire(directory: "\(parent.path)/vm-1", count: 1)
            var status = stat()
            #expect(stat("\(parent.path)/vm-1", &status) == 0)
            #expect(status.st_mode & 0o777 == 0o700)
            slot.release()

            // A slot file that is a symlink is not followed: no slot, and the proxy refuses.
            let directory = "\(parent.path)/vm-2"
            #expect(mkdir(directory, 0o700) == 0)
            #expect(symlink("\(parent.path)/elsewhere", "\(directory)/slot-0") == 0)
            #expect(throws: ConnectionSlot.Failure.self) { _ = try ConnectionSlot.acquire(directory: directory, count: 1) }
            #expect(access("\(parent.path)/elsewhere", F_OK) != 0)
        }
    }
}
