import NIOSSL

enum RedisTLSContextFactory {
    static func makeContext(_ tls: RedisClientConfiguration.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tls.verification {
        case .full: configuration.certificateVerification = .fullVerification
        case .noHostnameVerification: configuration.certificateVerification = .noHostnameVerification
        case .none: configuration.certificateVerification = .none
        }
        do {
            if let ca = tls.caCertificateFile {
                configuration.trustRoots = .file(ca)
            }
            if let certificate = tls.clientCertificateFile, let key = tls.clientKeyFile {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisError(code: .invalidConfiguration, message: "cannot set up TLS", underlying: error)
        }
    }
}
