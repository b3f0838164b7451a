#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import Synchronization

/// After requests are written, keeps the event-loop thread awake for a short while, polling the
/// sockets that wait for replies, instead of going straight to sleep in `epoll_wait`.
///
/// Why: on virtual machines whose idle CPUs halt at once (guest halt-polling off, as on our CI hosts),
/// waking a halted CPU for the reply costs more than the server takes to answer. A loopback GET round
/// trip measured 55–70 µs with the thread asleep and about 20 µs with it polling; redis-benchmark,
/// which sleeps, sees about 55 µs. The kernel's own remedy (`haltpoll`, `busy_poll`) is host
/// configuration a client cannot count on, so the client does the polling itself, bounded:
///
/// - one poll per event loop, run as a task after the tasks already queued, so every connection on
///   the loop writes first; it watches all of that loop's sockets with prompt replies outstanding
///   and stops at the first readable one, so it never holds back a reply;
/// - at most ``budget`` per poll, and never for blocking commands (their reply may take seconds);
/// - only for callers running on the event loop itself (``EventLoopTaskExecutor``): a caller on
///   another thread must be woken for the reply anyway, and on a small machine the polling loop
///   would hold the very CPU that thread needs (measured: p50 1.35x of redis-benchmark became 1.68x);
/// - adaptive: a poll that runs out of budget (a remote server, a slow command) suspends polling for
///   the next 2, 4, … 64 polls, so a server farther away than the budget costs almost nothing;
/// - readiness only: the poller never reads, so NIO sees the bytes exactly as it would have.
///
/// It needs the connections' file descriptors, which NIO does not expose; ``descriptor(local:remote:)``
/// finds one by its TCP addresses. Unix-socket connections (no unique local address) do not poll.
///
/// Confined to its event loop's thread, which is why the `@unchecked Sendable` is sound.
final class ReplyBusyPoller: @unchecked Sendable {
    let eventLoop: any EventLoop
    private var loop: PollLoop
    /// Descriptors with prompt replies outstanding, and how many.
    private var waiting: [CInt: Int] = [:]
    private var pollScheduled = false
    /// Polls run so far (for tests and curiosity). A poll that finds every reply already read
    /// does not run, so under load this can be below `promptWrites`.
    private(set) var polls = 0
    /// Writes that asked for a poll so far (for tests: whether a caller is polled for at all).
    private(set) var promptWrites = 0

    private init(eventLoop: any EventLoop, budget: TimeAmount) {
        self.eventLoop = eventLoop
        self.loop = PollLoop(budget: budget)
    }

    private struct Key: Hashable {
        let eventLoop: ObjectIdentifier
        let budget: Int64
    }
    /// Weak: a poller lives as long as a connection holds it, and keeps its event loop alive no longer.
    private struct Entry: Sendable {
        weak var poller: ReplyBusyPoller?
    }
    private static let registry = Mutex<[Key: Entry]>([:])

    /// The poller of `eventLoop` for this budget (one per loop, shared by its connections).
    static func shared(for eventLoop: any EventLoop, budget: TimeAmount) -> ReplyBusyPoller {
        let key = Key(eventLoop: ObjectIdentifier(eventLoop), budget: budget.nanoseconds)
        return registry.withLock { pollers in
            // A loop that was shut down may have left its identifier to a new one: never share across loops.
            if let poller = pollers[key]?.poller, poller.eventLoop === eventLoop { return poller }
            let poller = ReplyBusyPoller(eventLoop: eventLoop, budget: budget)
            pollers = pollers.filter { $0.value.poller != nil }
            pollers[key] = Entry(poller: poller)
            return poller
        }
    }

    /// A request expecting a prompt reply was written on `descriptor`.
    func written(on descriptor: CInt) {
        eventLoop.assertInEventLoop()
        promptWrites += 1
        waiting[descriptor, default: 0] += 1
        guard !pollScheduled else { return }
        pollScheduled = true
        eventLoop.execute { self.pollOnce() }
    }

    /// `count` such requests on `descriptor` finished (replied, failed or abandoned with their connection).
    func finished(on descriptor: CInt, count: Int = 1) {
        eventLoop.assertInEventLoop()
        guard count > 0, let outstanding = waiting[descriptor] else { return }
        waiting[descriptor] = outstanding > count ? outstanding - count : nil
    }

    @discardableResult
    func pollOnce() -> PollLoop.Outcome? {
        pollScheduled = false
        guard !waiting.isEmpty else { return nil }
        polls += 1
        return loop.awaitReadable(Array(waiting.keys))
    }

    /// The bounded, adaptive poll itself.
    struct PollLoop {
        let budget: TimeAmount
        /// Polls left to skip after one ran out of budget.
        private var skip = 0
        /// How many polls the next budget overrun skips (doubles up to 64, resets on success).
        private var penalty = 2

        init(budget: TimeAmount) {
            self.budget = budget
        }

        enum Outcome: Equatable {
            /// A socket became readable (or failed) within the budget.
            case ready
            /// Nothing arrived within the budget; the next polls are skipped.
            case budgetSpent
            /// Polling is suspended after an earlier overrun.
            case skipped
        }

        /// Polls until one of `descriptors` is readable or has an error, or the budget is spent.
        mutating func awaitReadable(_ descriptors: [CInt]) -> Outcome {
            if skip > 0 {
                skip -= 1
                return .skipped
            }
            var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let deadline = NIODeadline.now() + budget
            while poll(&fds, nfds_t(fds.count), 0) == 0 {
                if NIODeadline.now() >= deadline {
                    skip = penalty
                    penalty = min(penalty * 2, 64)
                    return .budgetSpent
                }
            }
            penalty = 2
            return .ready
        }
    }

    /// The descriptor of this process's TCP socket with these addresses, or nil (not TCP, not Linux, not found).
    static func descriptor(local: SocketAddress?, remote: SocketAddress?) -> CInt? {
        #if os(Linux)
        guard let local, let remote, let localPort = local.port, let remotePort = remote.port else { return nil }
        let family: Int32
        switch (local, remote) {
        case (.v4, .v4): family = AF_INET
        case (.v6, .v6): family = AF_INET6
        default: return nil
        }
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = CInt(name) else { continue }
            if let mine = endpoint(of: fd, getsockname), mine.family == family, mine.port == localPort,
               endpoint(of: fd, getpeername)?.port == remotePort {
                return fd
            }
        }
        #endif
        return nil
    }

    #if os(Linux)
    /// The address family and port `lookup` (getsockname or getpeername) reports for `fd`; nil unless IP.
    private static func endpoint(
        of fd: CInt, _ lookup: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt
    ) -> (family: Int32, port: Int)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { lookup(fd, $0, &length) }
        }
        guard found == 0 else { return nil }
        let family = Int32(storage.ss_family)
        let offset: Int
        switch family {
        case AF_INET: offset = MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!
        case AF_INET6: offset = MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port)!
        default: return nil
        }
        let port = withUnsafeBytes(of: storage) { Int(UInt16(bigEndian: $0.load(fromByteOffset: offset, as: UInt16.self))) }
        return (family, port)
    }
    #endif
}
