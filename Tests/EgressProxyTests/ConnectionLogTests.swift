import TestSupport
import EgressProxy
import Foundation
import Glibc
import Testing

@Suite struct ConnectionLogTests {
    private func refusedConnection(logFile: String, request: String = "CONNECT 10.9.8.7:443 HTTP/1.1\r\n\r\n") async throws {
        var options = EgressOptions()
        options.logFile = logFile
        let connection = ServedConnection(options: options)
        try TestSocket.send(connection.fd, request)
        _ = try TestSocket.receiveToEnd(connection.fd)
        _ = await connection.finish()
    }

    private func contents(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    @Test func appendsOneLinePerConnectionToAPrivateFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/egress.log"
        try await refusedConnection(logFile: path)
        try await refusedConnection(logFile: path, request: "GET / HTTP/1.1\r\n\r\n")

        let lines = contents(path).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].contains("target=10.9.8.7:443 address=- status=403 decision=refused"))
        #expect(lines[0].contains("reason=destination 10.9.8.7 is a private or reserved address"))
        #expect(lines[1].contains("status=405 decision=refused"))
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
    }

    @Test func logsTunnelsWithTheirBytes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let server = try EchoServer()
        defer { server.stop() }
        var options = EgressOptions.local(port: server.port)
        options.logFile = "\(directory.path)/egress.log"
        let connection = ServedConnection(options: options)
        try TestSocket.send(connection.fd, "CONNECT 127.0.0.1:\(server.port) HTTP/1.1\r\n\r\nping")
        _ = try TestSocket.receiveHead(connection.fd)
        _ = try TestSocket.receive(connection.fd, count: 4)
        shutdown(connection.fd, Int32(SHUT_WR))
        _ = try TestSocket.receiveToEnd(connection.fd)
        _ = await connection.finish()

        let line = contents("\(directory.path)/egress.log")
        #expect(line.contains("target=127.0.0.1:\(server.port) address=127.0.0.1 status=200 decision=tunnel end=closed up=4 down=4 ms="))
    }

    @Test func neverFollowsASymlink() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let target = "\(directory.path)/precious"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("keep\n".utf8)))
        #expect(symlink(target, "\(directory.path)/egress.log") == 0)
        try await refusedConnection(logFile: "\(directory.path)/egress.log")
        #expect(contents(target) == "keep\n")
    }

    @Test func stopsWritingAtTheSizeCap() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/egress.log"
        let full = String(repeating: "x", count: 64 * 1024 - 10) + "\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(full.utf8)))
        try await refusedConnection(logFile: path)
        #expect(contents(path) == full)

        // Below the cap, lines are appended after what was there.
        let small = "earlier line\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(small.utf8)))
        try await refusedConnection(logFile: path)
        #expect(contents(path).hasPrefix(small + "20"))
    }
}
