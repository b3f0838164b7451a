import Glibc
import Synchronization

/// The egress proxy as one long-running process for all of a worker's VMs (`--listeners FD`).
///
/// A jailed VM's QEMU lives in a network namespace of its own, where nothing but one listening
/// socket exists: the worker creates it there (127.0.0.1:3128, which the guest reaches as its proxy
/// address) and hands it over on the control socket. This process accepts on it and serves each
/// connection with ``serve(client:options:)`` on a thread of its own, so nothing is spawned per
/// connection and the proxy runs with none of the worker's privileges.
///
/// The control socket is a `SOCK_SEQPACKET` Unix socket; each message is one line of text:
/// - `add <vm> <max connections>` with the listening socket as `SCM_RIGHTS`: serve that VM;
/// - `remove <vm>`: stop accepting for it (its tunnels end as its QEMU's sockets close).
/// The process exits when the control socket closes: the worker is gone.
public enum ListenerService {
    /// Largest control message: a command line is far shorter.
    static let maximumMessageBytes = 256

    /// Serves until the control socket closes; returns the exit code.
    public static func run(control: CInt, options: EgressOptions) -> Int32 {
        let registry = Registry()
        var options = options
        // The listener's own per-VM count replaces slot files: one process sees every connection.
        options.slotsDirectory = nil
        while true {
            switch receive(control) {
            case .closed:
                return 0
            case .failed(let error):
                report("control socket failed: \(String(cString: strerror(error)))")
                return 1
            case .message(let text, let descriptor):
                handle(text, descriptor: descriptor, registry: registry, options: options)
            }
        }
    }

    private static func handle(_ text: String, descriptor: CInt?, registry: Registry, options: EgressOptions) {
        let words = text.split(separator: " ").map(String.init)
        switch (words.first, words.count, descriptor) {
        case ("add", 3, let listener?):
            guard let maximum = Int(words[2]), maximum > 0, isValidName(words[1]) else {
                close(listener)
                return report("refused control message: \(text.prefix(80))")
            }
            let vm = VMListener(name: words[1], fd: listener, maximumConnections: maximum)
            guard registry.add(vm) else {
                close(listener)
                return report("refused a second listener for \(vm.name)")
            }
            startThread { vm.acceptLoop(options: options, registry: registry) }
        case ("remove", 2, nil):
            registry.remove(words[1])?.stop()
        default:
            if let descriptor { close(descriptor) }
            report("refused control message: \(text.prefix(80))")
        }
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) }
    }

    /// One line on stderr, which the worker keeps (never a guest's socket in this mode).
    static func report(_ line: String) {
        let bytes = Array("codebench-egress: \(line)\n".utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    enum Received {
        case message(String, descriptor: CInt?)
        case closed
        case failed(Int32)
    }

    /// One control message and the descriptor it carries, if any (more than one is closed: never expected).
    static func receive(_ control: CInt) -> Received {
        var buffer = [UInt8](repeating: 0, count: maximumMessageBytes)
        let controlSpace = MemoryLayout<cmsghdr>.stride + 4 * MemoryLayout<CInt>.stride
        var controlBuffer = [UInt8](repeating: 0, count: controlSpace)
        while true {
            var descriptors: [CInt] = []
            let count = buffer.withUnsafeMutableBytes { payload -> Int in
                var vector = iovec(iov_base: payload.baseAddress, iov_len: payload.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    controlBuffer.withUnsafeMutableBytes { controlBytes -> Int in
                        var message = msghdr()
                        message.msg_iov = vectorPointer
                        message.msg_iovlen = 1
                        message.msg_control = controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                        let count = recvmsg(control, &message, Int32(MSG_CMSG_CLOEXEC))
                        guard count >= 0, message.msg_controllen >= MemoryLayout<cmsghdr>.stride else { return count }
                        let header = controlBytes.load(as: cmsghdr.self)
                        if header.cmsg_level == SOL_SOCKET, header.cmsg_type == Int32(SCM_RIGHTS) {
                            let fdCount = (Int(header.cmsg_len) - MemoryLayout<cmsghdr>.stride) / MemoryLayout<CInt>.size
                            for index in 0..<max(0, fdCount) {
                                descriptors.append(
                                    controlBytes.load(fromByteOffset: MemoryLayout<cmsghdr>.stride + index * MemoryLayout<CInt>.size, as: CInt.self))
                            }
                        }
                        return count
                    }
                }
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if count == 0 && descriptors.isEmpty { return .closed }
            for extra in descriptors.dropFirst() { close(extra) }
            let text = String(decoding: buffer[0..<count], as: UTF8.self).trimmingNewline()
            return .message(text, descriptor: descriptors.first)
        }
    }

    /// The VMs being served, by name.
    final class Registry: Sendable {
        private let listeners = Mutex<[String: VMListener]>([:])

        func add(_ listener: VMListener) -> Bool {
            listeners.withLock { all in
                guard all[listener.name] == nil else { return false }
                all[listener.name] = listener
                return true
            }
        }

        func remove(_ name: String) -> VMListener? {
            listeners.withLock { $0.removeValue(forKey: name) }
        }
    }

    /// One VM's listener and how many of its connections are being served.
    final class VMListener: Sendable {
        let name: String
        let fd: CInt
        let maximumConnections: Int
        private let active = Mutex(0)
        /// Refusals in flight (each lingers to deliver its 503): bounded too, so a flood costs
        /// threads only up to a fixed number; past it a connection is closed at once.
        private let refusing = Mutex(0)

        init(name: String, fd: CInt, maximumConnections: Int) {
            self.name = name
            self.fd = fd
            self.maximumConnections = maximumConnections
        }

        /// Wakes the accept loop: on Linux, shutting a listening socket down makes a blocked accept fail.
        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
        }

        /// Answers 503 on a thread of its own (a client that does not read must not stall accepting).
        private func refuseOverCap(_ client: CInt) {
            let maximum = maximumConnections
            let taken = refusing.withLock { count in
                guard count < maximum * 4 else { return false }
                count += 1
                return true
            }
            guard taken else {
                close(client)
                return
            }
            ListenerService.startThread { [self] in
                refuse(client: client, status: .serviceUnavailable, message: "too many connections from this VM (at most \(maximum) at once)")
                refusing.withLock { $0 -= 1 }
            }
        }

        /// Accepts until ``stop()``, then closes the listener.
        func acceptLoop(options: EgressOptions, registry: Registry) {
            while true {
                // accept, not accept4 (not in Swift's Glibc): this process never spawns, so a
                // descriptor without close-on-exec cannot leak anywhere.
                let client = accept(fd, nil, nil)
                if client < 0 {
                    switch errno {
                    case EINTR, ECONNABORTED: continue
                    case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                        // Out of descriptors for now: the next try may succeed once tunnels end.
                        usleep(50_000)
                        continue
                    default:
                        close(fd)
                        return
                    }
                }
                let admitted = active.withLock { count in
                    guard count < maximumConnections else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    refuseOverCap(client)
                    continue
                }
                let name = self.name
                startThread { [self] in
                    let outcome = serve(client: client, options: options)
                    active.withLock { $0 -= 1 }
                    ListenerService.report("vm=\(name) \(outcome.logFields)")
                }
            }
        }
    }

    /// Runs `body` on a detached thread; when no thread can be started, runs it here (slower, never lost).
    static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(context).takeRetainedValue().body()
            return
        }
        pthread_detach(thread)
    }
}

extension String {
    fileprivate func trimmingNewline() -> String {
        var text = self
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        return text
    }
}
