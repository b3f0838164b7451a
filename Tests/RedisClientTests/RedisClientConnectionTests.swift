import NIOCore
import RESP
import RedisClient
import Testing
import TestSupport

@Suite struct RedisClientConnectionTests {
    @Test func requirepassAuthenticates() async throws {
        try await withRedisServer(RedisServerOptions(password: "s3cret:/@")) { server in
            let url = "redis://:s3cret%3A%2F%40@127.0.0.1:\(server.port)"
            try await withClient(url) { redis in
                #expect(try await redis.send(RedisCommand("ACL", "WHOAMI"), as: String.self) == "default")
                let version = try await redis.withDedicatedConnection { $0.protocolVersion }
                #expect(version == 3)
            }
        }
    }

    @Test func wrongPasswordFailsPromptlyWithAuthenticationError() async throws {
        try await withRedisServer(RedisServerOptions(password: "right")) { server in
            try await withClient(server.url(password: "wrong")) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.connect() }
                #expect(error?.code == .authenticationFailed)
                #expect(error?.message.contains("WRONGPASS") == true)
                // Every command reports the same clear error; none hangs or times out.
                let again = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(again?.code == .authenticationFailed)
            }
            try await withClient(server.url) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(error?.code == .authenticationFailed)
                #expect(error?.message.contains("none was configured") == true)
            }
        }
    }

    @Test func aclUserAuthenticates() async throws {
        let options = RedisServerOptions(aclUsers: [.init(name: "worker", password: "pw1", rules: ["~jobs:*", "+@all"])])
        try await withRedisServer(options) { server in
            try await withClient(server.url(user: "worker", password: "pw1")) { redis in
                #expect(try await redis.send(RedisCommand("ACL", "WHOAMI"), as: String.self) == "worker")
                _ = try await redis.send("SET", "jobs:1", "x")
                let denied = await #expect(throws: RedisError.self) { try await redis.send("SET", "other", "x") }
                #expect(denied?.serverErrorPrefix == "NOPERM")
            }
            try await withClient(server.url(user: "worker", password: "nope")) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(error?.code == .authenticationFailed)
                #expect(error?.message.contains("worker") == true)
            }
        }
    }

    @Test func selectsTheDatabaseFromTheURL() async throws {
        try await withRedisServer { server in
            try await withClient(server.url(db: 3)) { db3 in
                try await withClient(server.url) { db0 in
                    _ = try await db3.send("SET", "where", "three")
                    #expect(try await db0.send(RedisCommand("GET", "where"), as: String?.self) == nil)
                }
                #expect(try await db3.send(RedisCommand("GET", "where"), as: String.self) == "three")
                // Dedicated connections get the same database.
                let viaDedicated = try await db3.withDedicatedConnection { try await $0.send(RedisCommand("GET", "where"), as: String.self) }
                #expect(viaDedicated == "three")
            }
            try await withClient(server.url(db: 99)) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(error?.code == .invalidConfiguration)
            }
        }
    }

    @Test func fallsBackToAuthAndRESP2WithoutHello() async throws {
        let options = RedisServerOptions(password: "pw", extraArguments: ["--rename-command", "HELLO", ""])
        try await withRedisServer(options) { server in
            try await withClient(server.url(password: "pw", db: 1)) { redis in
                let version = try await redis.withDedicatedConnection { $0.protocolVersion }
                #expect(version == 2)
                _ = try await redis.send("HSET", "h", "a", "1")
                #expect(try await redis.send(RedisCommand("HGETALL", "h"), as: [String: Int].self) == ["a": 1])
            }
            try await withClient(server.url(password: "bad")) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(error?.code == .authenticationFailed)
            }
        }
    }

    @Test func unixSocketURLWorks() async throws {
        try await withRedisServer(RedisServerOptions(unixSocket: true)) { server in
            let path = try #require(server.unixSocketPath)
            try await withClient("unix://\(path)") { redis in
                #expect(try await redis.send("PING").string == "PONG")
                _ = try await redis.send("SET", "via", "socket")
            }
            try await withClient("redis+unix://\(path)?db=0") { redis in
                let value = try await redis.send(RedisCommand("GET", "via"), as: String.self)
                #expect(value == "socket")
            }
        }
    }

    @Test func tlsWithGeneratedCertificates() async throws {
        let certificates = try RedisTLSCertificates.generate()
        defer { certificates.remove() }
        try await withRedisServer(RedisServerOptions(password: "pw", tls: .init(certificates))) { server in
            let url = try #require(server.tlsURL(password: "pw"))
            try await withClient(url, configure: { $0.tls?.caCertificateFile = certificates.caCertificateFile }) { redis in
                #expect(try await redis.send("PING").string == "PONG")
                let replies = try await redis.pipeline((0..<1000).map { RedisCommand("INCR", "n\($0 % 3)") })
                #expect(replies.count == 1000)
            }
            // Host name verification: the certificate names localhost too.
            let byName = try #require(server.tlsURL(password: "pw", host: "localhost"))
            try await withClient(byName, configure: { $0.tls?.caCertificateFile = certificates.caCertificateFile }) { redis in
                let pong = try await redis.send("PING")
                #expect(pong.string == "PONG")
            }
            // Without our CA the server's certificate is not trusted.
            try await withClient(url, configure: { $0.reconnect.maxAttempts = 1 }) { redis in
                let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
                #expect(error?.code == .connectionFailed)
            }
            // ... unless verification is switched off (tests only).
            try await withClient(url, configure: { $0.tls?.verification = .none }) { redis in
                let pong = try await redis.send("PING")
                #expect(pong.string == "PONG")
            }
        }
    }

    @Test func tlsWithClientCertificate() async throws {
        let certificates = try RedisTLSCertificates.generate()
        defer { certificates.remove() }
        try await withRedisServer(RedisServerOptions(tls: .init(certificates, authenticateClients: true))) { server in
            let url = try #require(server.tlsURL())
            try await withClient(url, configure: {
                $0.tls?.caCertificateFile = certificates.caCertificateFile
                $0.tls?.clientCertificateFile = certificates.clientCertificateFile
                $0.tls?.clientKeyFile = certificates.clientKeyFile
            }) { redis in
                let pong = try await redis.send("PING")
                #expect(pong.string == "PONG")
            }
        }
    }

    @Test func connectionRefusedFailsAfterRetries() async throws {
        let port = try await withRedisServer { $0.port } // a port nothing listens on any more
        try await withClient("redis://127.0.0.1:\(port)", configure: {
            $0.reconnect = .init(maxAttempts: 3, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(20))
        }) { redis in
            let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
            #expect(error?.code == .connectionFailed)
            #expect(error?.message.contains("3 attempts") == true)
        }
    }

    @Test func closedClientRefusesCommands() async throws {
        try await withRedisServer { server in
            let redis = try makeClient(server.url)
            #expect(try await redis.send("PING").string == "PONG")
            redis.close()
            let error = await #expect(throws: RedisError.self) { try await redis.send("PING") }
            #expect(error?.code == .clientClosed)
        }
    }
}
