/// `redis://`, `rediss://`, `unix://`, `redis+unix://` URLs, parsed by hand so that passwords with
/// reserved characters (percent-escaped) and IPv6 literals work the same on every platform.
enum RedisURLParser {
    static func parse(_ url: String) throws(RedisError) -> RedisClientConfiguration {
        func invalid(_ why: String) -> RedisError {
            RedisError(code: .invalidConfiguration, message: "invalid Redis URL: \(why)")
        }
        guard let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://") else { throw invalid("missing scheme") }
        let scheme = url[..<colon].lowercased()
        var rest = url[url.index(colon, offsetBy: 3)...]

        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for item in rest[rest.index(after: q)...].split(separator: "&") {
                let parts = item.split(separator: "=", maxSplits: 1)
                query[String(parts[0]).lowercased()] = parts.count > 1 ? percentDecode(parts[1]) : ""
            }
            rest = rest[..<q]
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = percentDecode(userInfo[..<colon])
                username = user.isEmpty ? nil : user
                password = percentDecode(userInfo[userInfo.index(after: colon)...])
            } else if !userInfo.isEmpty {
                // `redis://secret@host` is how many tools spell a password-only URL.
                password = percentDecode(userInfo)
            }
        }
        if let user = query["user"] ?? query["username"] { username = user }
        if let pass = query["password"] { password = pass }

        var database = 0
        let endpoint: RedisClientConfiguration.Endpoint
        var tls: RedisClientConfiguration.TLS?
        switch scheme {
        case "redis", "rediss", "valkey", "valkeys":
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let path = rest[rest.index(after: slash)...]
                if !path.isEmpty {
                    guard let db = Int(path), db >= 0 else { throw invalid("database '\(path)' is not a number") }
                    database = db
                }
            }
            var host = String(hostPort)
            var port = 6379
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()) else { throw invalid("bad port") }
                    port = p
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                guard let p = Int(hostPort[hostPort.index(after: colon)...]) else { throw invalid("bad port") }
                port = p
            }
            guard !host.isEmpty else { throw invalid("missing host") }
            guard (1...65535).contains(port) else { throw invalid("port \(port) out of range") }
            endpoint = .tcp(host: host, port: port)
            if scheme == "rediss" || scheme == "valkeys" { tls = .init() }
        case "unix", "redis+unix", "redis-socket":
            let path = String(rest)
            guard path.hasPrefix("/") else { throw invalid("unix socket path must be absolute") }
            endpoint = .unixSocket(path: path)
        default:
            throw invalid("unknown scheme '\(scheme)'")
        }
        if let db = query["db"] {
            guard let n = Int(db), n >= 0 else { throw invalid("database '\(db)' is not a number") }
            database = n
        }
        if tls != nil {
            // TLS options for URLs given on a command line or in an environment variable.
            if let ca = query["ca"] ?? query["tls_ca_file"] { tls?.caCertificateFile = ca }
            if let cert = query["cert"] ?? query["tls_cert_file"] { tls?.clientCertificateFile = cert }
            if let key = query["key"] ?? query["tls_key_file"] { tls?.clientKeyFile = key }
            if let name = query["sni"] ?? query["tls_server_name"] { tls?.serverHostname = name }
            switch query["verify"] ?? query["tls_verify"] {
            case nil, "full": break
            case "no-hostname", "nohostname", "chain": tls?.verification = .noHostnameVerification
            case "none", "insecure": tls?.verification = .none
            case let other?: throw invalid("unknown verify mode '\(other)' (full, no-hostname, none)")
            }
        }
        let authentication = password.map { RedisClientConfiguration.Authentication(username: username, password: $0) }
        if password == nil, username != nil { throw invalid("a user without a password") }
        return RedisClientConfiguration(endpoint: endpoint, tls: tls, authentication: authentication, database: database)
    }

    static func percentDecode(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let h = iterator.next(), let l = iterator.next(),
               let value = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
