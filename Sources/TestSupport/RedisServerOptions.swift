/// How a test `redis-server` is started. Every field has a default that gives a plain,
/// password-less server on a free loopback port with persistence off.
public struct RedisServerOptions: Sendable {
    /// An ACL user created with `--user`.
    public struct ACLUser: Sendable {
        public var name: String
        public var password: String
        /// ACL rules appended after `on >password`; the default grants everything.
        public var rules: [String]

        public init(name: String, password: String, rules: [String] = ["~*", "&*", "+@all"]) {
            self.name = name
            self.password = password
            self.rules = rules
        }
    }

    /// Files for the TLS port (see ``RedisTLSCertificates`` to generate them).
    public struct TLS: Sendable {
        public var certificateFile: String
        public var keyFile: String
        public var caCertificateFile: String
        /// `--tls-auth-clients`: whether clients must present a certificate.
        public var authenticateClients: Bool

        public init(certificateFile: String, keyFile: String, caCertificateFile: String, authenticateClients: Bool = false) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caCertificateFile = caCertificateFile
            self.authenticateClients = authenticateClients
        }

        public init(_ certificates: RedisTLSCertificates, authenticateClients: Bool = false) {
            self.init(
                certificateFile: certificates.serverCertificateFile,
                keyFile: certificates.serverKeyFile,
                caCertificateFile: certificates.caCertificateFile,
                authenticateClients: authenticateClients
            )
        }
    }

    /// `--requirepass` (the password of the `default` user).
    public var password: String?
    /// Extra ACL users (`--user name on >password rules...`).
    public var aclUsers: [ACLUser]
    /// When set, a TLS port is opened beside the plain port.
    public var tls: TLS?
    /// `--appendonly yes` with `appendfsync always`, so data survives a SIGKILL + restart.
    public var appendOnly: Bool
    /// Also listen on a unix socket in the server's temp dir.
    public var unixSocket: Bool
    /// Anything else, passed verbatim (e.g. `["--maxclients", "100"]`).
    public var extraArguments: [String]
    /// The binary to run.
    public var executable: String
    /// How long to wait for the server to answer PING after starting.
    public var startTimeout: Duration

    public init(
        password: String? = nil,
        aclUsers: [ACLUser] = [],
        tls: TLS? = nil,
        appendOnly: Bool = false,
        unixSocket: Bool = false,
        extraArguments: [String] = [],
        executable: String = "/usr/bin/redis-server",
        startTimeout: Duration = .seconds(10)
    ) {
        self.password = password
        self.aclUsers = aclUsers
        self.tls = tls
        self.appendOnly = appendOnly
        self.unixSocket = unixSocket
        self.extraArguments = extraArguments
        self.executable = executable
        self.startTimeout = startTimeout
    }
}
