import RedisClient
import Testing

@Suite struct RedisURLTests {
    @Test func plainURLWithEverything() throws {
        let c = try RedisClientConfiguration(url: "redis://worker:p%40ss%3Aword@redis.internal:6380/4")
        #expect(c.endpoint == .tcp(host: "redis.internal", port: 6380))
        #expect(c.authentication?.username == "worker")
        #expect(c.authentication?.password == "p@ss:word")
        #expect(c.database == 4)
        #expect(c.tls == nil)
        #expect(!"\(c)".contains("p@ss"), "the password never shows up in logs")
        #expect(!String(reflecting: c).contains("p@ss"))
    }

    @Test func defaultsAndPasswordOnlyForms() throws {
        let bare = try RedisClientConfiguration(url: "redis://localhost")
        #expect(bare.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(bare.authentication == nil)
        #expect(bare.database == 0)
        #expect(try RedisClientConfiguration(url: "redis://:secret@h").authentication?.password == "secret")
        #expect(try RedisClientConfiguration(url: "redis://:secret@h").authentication?.username == nil)
        #expect(try RedisClientConfiguration(url: "redis://secret@h").authentication?.password == "secret")
        #expect(try RedisClientConfiguration(url: "REDIS://h:1/").endpoint == .tcp(host: "h", port: 1))
    }

    @Test func ipv6Host() throws {
        #expect(try RedisClientConfiguration(url: "redis://[::1]:7000/2").endpoint == .tcp(host: "::1", port: 7000))
        #expect(try RedisClientConfiguration(url: "redis://[::1]").endpoint == .tcp(host: "::1", port: 6379))
    }

    @Test func tlsURLAndOptions() throws {
        let c = try RedisClientConfiguration(url: "rediss://u:p@h:6390?ca=/etc/ca.pem&verify=none&cert=/c.pem&key=/k.pem&sni=redis.example")
        #expect(c.endpoint == .tcp(host: "h", port: 6390))
        #expect(c.tls?.caCertificateFile == "/etc/ca.pem")
        #expect(c.tls?.clientCertificateFile == "/c.pem")
        #expect(c.tls?.clientKeyFile == "/k.pem")
        #expect(c.tls?.serverHostname == "redis.example")
        if case .none? = c.tls?.verification {} else { Issue.record("verify=none not applied") }
        if case .full? = try RedisClientConfiguration(url: "rediss://h").tls?.verification {} else { Issue.record("TLS must verify by default") }
    }

    @Test func unixSocketURLs() throws {
        let c = try RedisClientConfiguration(url: "unix:///run/redis/redis.sock?db=3&password=pw&user=me")
        #expect(c.endpoint == .unixSocket(path: "/run/redis/redis.sock"))
        #expect(c.database == 3)
        #expect(c.authentication?.username == "me")
        #expect(c.authentication?.password == "pw")
        #expect(try RedisClientConfiguration(url: "redis+unix:///tmp/r.sock").endpoint == .unixSocket(path: "/tmp/r.sock"))
    }

    @Test(arguments: [
        "localhost:6379", "http://h", "redis://", "redis://h:port", "redis://h:0", "redis://h:70000", "redis://h/x",
        "redis://h/-1", "unix://relative.sock", "redis://[::1", "rediss://h?verify=sometimes", "redis://h?db=abc",
    ])
    func invalidURLsAreRejected(url: String) {
        let error = #expect(throws: RedisError.self) { try RedisClientConfiguration(url: url) }
        #expect(error?.code == .invalidConfiguration)
    }
}
