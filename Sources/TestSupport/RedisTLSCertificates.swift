import Foundation

/// A throwaway CA plus a server certificate (SAN `IP:127.0.0.1`, `DNS:localhost`) and a client
/// certificate, generated with the `openssl` CLI into a temp dir. Call ``remove()`` when done.
public struct RedisTLSCertificates: Sendable {
    public let directory: String
    public var caCertificateFile: String { directory + "/ca.crt" }
    public var caKeyFile: String { directory + "/ca.key" }
    public var serverCertificateFile: String { directory + "/server.crt" }
    public var serverKeyFile: String { directory + "/server.key" }
    public var clientCertificateFile: String { directory + "/client.crt" }
    public var clientKeyFile: String { directory + "/client.key" }

    /// Generates the files (takes well under a second with EC keys).
    public static func generate(openssl: String = "/usr/bin/openssl") throws -> RedisTLSCertificates {
        let directory = NSTemporaryDirectory() + "/redis-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certs = RedisTLSCertificates(directory: directory)
        do {
            try certs.run(openssl, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", certs.caKeyFile, "-out", certs.caCertificateFile, "-days", "2",
                "-subj", "/CN=CodeBench Test CA",
            ])
            try certs.issue(openssl, name: "server", subject: "/CN=localhost",
                            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
            try certs.issue(openssl, name: "client", subject: "/CN=codebench-client",
                            extensions: "extendedKeyUsage=clientAuth\n")
        } catch {
            certs.remove()
            throw error
        }
        return certs
    }

    /// Deletes the temp dir.
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func issue(_ openssl: String, name: String, subject: String, extensions: String) throws {
        let key = directory + "/\(name).key"
        let csr = directory + "/\(name).csr"
        let ext = directory + "/\(name).ext"
        try extensions.write(toFile: ext, atomically: true, encoding: .utf8)
        try run(openssl, [
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subject,
        ])
        try run(openssl, [
            "x509", "-req", "-in", csr, "-CA", caCertificateFile, "-CAkey", caKeyFile, "-CAcreateserial",
            "-out", directory + "/\(name).crt", "-days", "2", "-extfile", ext,
        ])
    }

    private func run(_ executable: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw RedisServerError(message: "openssl \(arguments.first ?? "") failed: \(String(decoding: output, as: UTF8.self))")
        }
    }
}
