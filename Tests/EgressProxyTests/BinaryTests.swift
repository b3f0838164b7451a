import TestSupport
import Foundation
import Glibc
import Testing

extension SpawnSensitiveTests {
    /// The real `codebench-egress` executable, started the way libslirp starts it: one socket as its
    /// stdin, stdout and stderr.
    @Suite struct BinaryTests {
        /// The binary sits next to the test bundle in the build products directory.
        static func binaryPath() throws -> String {
            let runner = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            let path = URL(fileURLWithPath: runner).deletingLastPathComponent().appendingPathComponent("codebench-egress").path
            try #require(access(path, X_OK) == 0, "build codebench-egress first (swift build --build-tests builds it)")
            return path
        }

        /// Spawns the binary with `stdio` as fds 0, 1 and 2 and returns its pid.
        static func spawn(_ arguments: [String], stdio: CInt, stderr: CInt? = nil) throws -> pid_t {
            let path = try binaryPath()
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, stdio, 0)
            posix_spawn_file_actions_adddup2(&actions, stdio, 1)
            posix_spawn_file_actions_adddup2(&actions, stderr ?? stdio, 2)
            let argv = ([path] + arguments).map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var pid: pid_t = 0
            let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
            try #require(status == 0, "posix_spawn: \(status)")
            return pid
        }

        static func exitCode(of pid: pid_t) -> Int32? {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil
        }

        /// Splits a complete response into head and body, requiring the body to be exactly Content-Length
        /// bytes: anything else on the socket (a stray diagnostic) fails the test.
        static func splitResponse(_ bytes: [UInt8]) throws -> (head: String, body: String) {
            let text = String(decoding: bytes, as: UTF8.self)
            let parts = text.components(separatedBy: "\r\n\r\n")
            try #require(parts.count >= 2, "no complete head in \(text)")
            let head = parts[0]
            let body = parts.dropFirst().joined(separator: "\r\n\r\n")
            let lengthLine = try #require(head.components(separatedBy: "\r\n").first { $0.hasPrefix("Content-Length: ") })
            #expect(Int(lengthLine.dropFirst("Content-Length: ".count)) == body.utf8.count, "extra bytes after the response: \(text)")
            return (head, body)
        }

        @Test func answersADeniedDestinationWithNothingButTheHTTPResponse() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // Closed exactly once, below: a second close could hit an fd another test has just opened.
            let (mine, childs) = TestSocket.pair()
            let pid = try Self.spawn(["--log-file", "\(directory.path)/egress.log", "--slots-dir", "\(directory.path)/slots"], stdio: childs)
            close(childs)

            try TestSocket.send(mine, "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n")
            let output = try TestSocket.receiveToEnd(mine)
            let (head, body) = try Self.splitResponse(output)
            #expect(head.hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
            #expect(body == "destination 127.0.0.1 is a private or reserved address: 127.0.0.1 is in 127.0.0.0/8 (loopback)\n")
            close(mine)
            #expect(await onThread { Self.exitCode(of: pid) } == 1)

            let log = try String(contentsOfFile: "\(directory.path)/egress.log", encoding: .utf8)
            #expect(log.contains("target=127.0.0.1:443 address=- status=403 decision=refused"))
            #expect(access("\(directory.path)/slots/slot-0", F_OK) == 0)
        }

        @Test func answersBadArgumentsWith500AndTellsOnlyTheOperatorWhy() async throws {
            // Closed exactly once, below: a second close could hit an fd another test has just opened.
            let (mine, childs) = TestSocket.pair()
            let pid = try Self.spawn(["--max-bytes", "lots"], stdio: childs)
            close(childs)
            try TestSocket.send(mine, "CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            let (head, body) = try Self.splitResponse(try TestSocket.receiveToEnd(mine))
            #expect(head.hasPrefix("HTTP/1.1 500 Internal Server Error\r\n"))
            #expect(body == "egress proxy misconfigured\n")
            close(mine)
            #expect(await onThread { Self.exitCode(of: pid) } == 2)

            // --check is how the operator finds out: the message goes to stderr.
            let (errors, childErrors) = TestSocket.pair()
            let (input, childInput) = TestSocket.pair()
            defer { close(errors); close(input) }
            let checker = try Self.spawn(["--check", "--max-bytes", "lots"], stdio: childInput, stderr: childErrors)
            close(childErrors)
            close(childInput)
            let message = try TestSocket.receiveTextToEnd(errors)
            #expect(try TestSocket.receiveToEnd(input).isEmpty, "nothing on stdout or stdin")
            #expect(message == "codebench-egress: --max-bytes: 'lots' is not a positive number\n")
            #expect(await onThread { Self.exitCode(of: checker) } == 2)
        }
    }
}
