import Glibc

/// Serves one client connection on `client` and closes it: reads a `CONNECT host:port` request head,
/// checks the port and every address the host resolves to, connects, answers 200 and relays bytes
/// until the tunnel ends; or answers an HTTP error and closes.
///
/// Never writes anywhere but `client` and the log file (under QEMU's guestfwd, stderr is the guest's
/// socket). `client` is used for both reading and writing and is made non-blocking. Blocks until the
/// connection is over, which the options' timeouts and byte cap bound.
public func serve(client: CInt, options: EgressOptions) -> ConnectionReport {
    let started = ContinuousClock.now
    Socket.setNonBlocking(client)
    var report = Session(client: client, options: options).runHoldingSlot()
    report.duration = ContinuousClock.now - started
    if let path = options.logFile {
        ConnectionLog(path: path, maxBytes: options.maxLogBytes)
            .append("\(ConnectionLog.timestamp()) pid=\(getpid()) \(report.logFields)")
    }
    return report
}

/// Answers `status` with `message` and closes `client` without reading a request: for a proxy that
/// cannot serve at all (bad arguments). Lingers like every refusal, so the answer is not lost.
public func refuse(client: CInt, status: HTTPStatus, message: String) {
    Socket.setNonBlocking(client)
    Socket.writeAll(client, HTTPResponse.error(status, message), until: Deadline(after: Session.responseTimeout))
    Socket.lingeringClose(client)
}

/// One connection, step by step. Every path ends with `client` closed.
private struct Session {
    let client: CInt
    let options: EgressOptions

    /// How long the proxy tries to deliver its own response to a client that does not read.
    static let responseTimeout: Duration = .seconds(5)

    /// Runs the connection holding a slot, or refuses with 503 when there is none to take. The slot is
    /// taken before the request is read, so connections that never send a head count too.
    func runHoldingSlot() -> ConnectionReport {
        guard let directory = options.slotsDirectory else { return run() }
        let slot: ConnectionSlot
        do {
            slot = try ConnectionSlot.acquire(directory: directory, count: options.maxConnections)
        } catch {
            switch error {
            case .allTaken(let count):
                return refuse(.serviceUnavailable, "too many connections from this VM (at most \(count) at once)")
            case .unusable(let message):
                // Fail closed: without the cap working, no connection.
                return refuse(.serviceUnavailable, "connection limit unavailable: \(message)")
            }
        }
        let report = run()
        slot.release()
        return report
    }

    private func run() -> ConnectionReport {
        let request: ConnectRequest
        let leftover: [UInt8]
        switch readHead() {
        case .request(let parsed, let rest):
            (request, leftover) = (parsed, rest)
        case .refused(let status, let reason):
            return refuse(status, reason)
        case .left(let reason):
            close(client)
            return ConnectionReport(outcome: .clientLeft(reason: reason))
        }
        let target = request.description

        guard options.allowedPorts.contains(request.port) else {
            let allowed = options.allowedPorts.sorted().map(String.init).joined(separator: ", ")
            return refuse(.forbidden, "port \(request.port) is not allowed; allowed ports: \(allowed)", target: target)
        }

        let candidates: [IPAddress]
        switch request.host {
        case .address(let address):
            candidates = [address]
        case .name(let name):
            do {
                candidates = try Resolver.resolve(name, timeout: options.connectTimeout)
            } catch {
                switch error {
                case .notFound(let message):
                    return refuse(.badGateway, "cannot resolve \(name): \(message)", target: target)
                case .timedOut:
                    return refuse(.gatewayTimeout, "resolving \(name) timed out", target: target)
                }
            }
        }

        guard let localAddresses = Resolver.localAddresses() else {
            return refuse(.internalServerError, "cannot list this host's addresses", target: target)
        }
        let policy = AddressPolicy(exceptions: options.allowedAddresses, localAddresses: localAddresses)
        var allowed: [IPAddress] = []
        var firstDenial: String?
        for candidate in candidates {
            switch policy.decide(candidate) {
            case .allowed: allowed.append(candidate)
            case .denied(let reason): firstDenial = firstDenial ?? reason
            }
        }
        guard !allowed.isEmpty else {
            let reason = firstDenial ?? "no address"
            return refuse(.forbidden, "destination \(request.host) is a private or reserved address: \(reason)", target: target)
        }

        let upstream: CInt
        let address: IPAddress
        do {
            (upstream, address) = try Connector.connect(to: Array(allowed.prefix(8)), port: request.port, timeout: options.connectTimeout)
        } catch {
            return refuse(error.timedOut ? .gatewayTimeout : .badGateway, "cannot connect to \(target): \(error.message)", target: target)
        }

        var report = ConnectionReport(outcome: .tunnel(.closed), target: target, address: address)
        guard Socket.writeAll(client, HTTPResponse.established, until: Deadline(after: Self.responseTimeout)) else {
            close(upstream)
            close(client)
            report.outcome = .clientLeft(reason: "client went away before the 200 response was delivered")
            return report
        }
        let relay = Relay(client: client, upstream: upstream, idleTimeout: options.idleTimeout, maxBytes: options.maxBytes)
        let result = relay.run(pendingUp: leftover)
        close(upstream)
        close(client)
        report.outcome = .tunnel(result.end)
        report.bytesUp = result.bytesUp
        report.bytesDown = result.bytesDown
        return report
    }

    private enum HeadResult {
        case request(ConnectRequest, leftover: [UInt8])
        case refused(HTTPStatus, String)
        case left(String)
    }

    /// Reads until the parser has a complete head, refuses, or the head timeout passes. Reads never go
    /// past `maxHeadBytes` in total, so what follows the head is at most that much.
    private func readHead() -> HeadResult {
        let deadline = Deadline(after: options.headTimeout)
        // Clamped so what follows the head always fits the relay's first buffer.
        let capacity = min(max(options.maxHeadBytes, 64), 64 * 1024)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: capacity)
        while true {
            // Checked on every round, not only when a read would block: a client trickling bytes
            // must not stretch the deadline.
            if deadline.hasPassed { return .refused(.requestTimeout, "no complete request head within \(options.headTimeout)") }
            let room = capacity - buffer.count
            let result = chunk.withUnsafeMutableBytes {
                Socket.readSome(client, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<room]))
            }
            switch result {
            case .bytes(let count):
                buffer += chunk[0..<count]
                do {
                    switch try RequestHeadParser.parse(buffer, maxHeadBytes: capacity) {
                    case .incomplete: continue
                    case .complete(let request, let headLength): return .request(request, leftover: Array(buffer[headLength...]))
                    }
                } catch {
                    return .refused(error.status, error.message)
                }
            case .endOfFile:
                if buffer.isEmpty { return .left("closed without sending a request") }
                return .refused(.badRequest, "connection closed before the request head was complete")
            case .wouldBlock:
                if !Socket.wait(client, for: Int16(POLLIN), until: deadline) {
                    return .refused(.requestTimeout, "no complete request head within \(options.headTimeout)")
                }
            case .failed(let code):
                return .left("reading the request head: \(Connector.errorText(code))")
            }
        }
    }

    /// Answers `status` with `reason` as the body and closes the connection.
    private func refuse(_ status: HTTPStatus, _ reason: String, target: String? = nil) -> ConnectionReport {
        EgressProxy.refuse(client: client, status: status, message: reason)
        return ConnectionReport(outcome: .refused(status, reason: reason), target: target)
    }
}
