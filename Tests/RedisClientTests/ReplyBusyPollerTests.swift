#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
@testable import RedisClient
import Testing
import TestSupport

@Suite struct ReplyBusyPollerTests {
    /// A connected pair of Unix stream sockets, closed after `body`.
    private func withSocketPair(_ body: (CInt, CInt) throws -> Void) throws {
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        try body(fds[0], fds[1])
    }

    @Test func returnsAsSoonAsOneSocketIsReadable() throws {
        try withSocketPair { reader, writer in
            try withSocketPair { idle, _ in
                // A budget no test run could reach: `.ready` proves the poll ended on readability.
                var poller = ReplyBusyPoller.PollLoop(budget: .seconds(60))
                #expect(write(writer, "+OK\r\n", 5) == 5)
                #expect(poller.awaitReadable([idle, reader]) == .ready)
            }
            // It only watches: the bytes are still there for NIO to read.
            var buffer = [UInt8](repeating: 0, count: 8)
            #expect(read(reader, &buffer, 8) == 5)
        }
    }

    @Test func aSpentBudgetSuspendsPollingForMoreWritesEachTime() throws {
        try withSocketPair { reader, writer in
            var poller = ReplyBusyPoller.PollLoop(budget: .microseconds(20))
            var outcomes: [ReplyBusyPoller.PollLoop.Outcome] = []
            for _ in 0..<10 { outcomes.append(poller.awaitReadable([reader])) }
            #expect(outcomes == [.budgetSpent, .skipped, .skipped, .budgetSpent, .skipped, .skipped, .skipped, .skipped, .budgetSpent, .skipped])
            // A prompt reply resets the back-off.
            for _ in 0..<7 { #expect(poller.awaitReadable([reader]) == .skipped) }
            #expect(write(writer, "+OK\r\n", 5) == 5)
            #expect(poller.awaitReadable([reader]) == .ready)
            var buffer = [UInt8](repeating: 0, count: 8)
            #expect(read(reader, &buffer, 8) == 5)
            #expect(poller.awaitReadable([reader]) == .budgetSpent)
            #expect(poller.awaitReadable([reader]) == .skipped)
            #expect(poller.awaitReadable([reader]) == .skipped)
            #expect(poller.awaitReadable([reader]) == .budgetSpent)
        }
    }

    @Test func theBackOffStopsGrowingAt64Writes() throws {
        try withSocketPair { reader, _ in
            var poller = ReplyBusyPoller.PollLoop(budget: .microseconds(1))
            var skippedRuns: [Int] = []
            var run = 0
            for _ in 0..<400 {
                if poller.awaitReadable([reader]) == .skipped {
                    run += 1
                } else if run > 0 {
                    skippedRuns.append(run)
                    run = 0
                }
            }
            #expect(Array(skippedRuns.prefix(7)) == [2, 4, 8, 16, 32, 64, 64])
        }
    }

    @Test func findsTheDescriptorOfATCPConnection() async throws {
        try await withRedisServer { server in
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: server.port).get()
            let descriptor = try #require(ReplyBusyPoller.descriptor(local: channel.localAddress, remote: channel.remoteAddress))
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let found = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(descriptor, $0, &length) } }
            #expect(found == 0)
            #expect(Int(UInt16(bigEndian: address.sin_port)) == server.port)
            let local = channel.localAddress
            let remote = channel.remoteAddress
            try await channel.close()
            #expect(ReplyBusyPoller.descriptor(local: local, remote: remote) == nil)
        }
    }

    @Test func oneSharedPollerPerEventLoopAndBudget() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let loops = Array(group.makeIterator())
        let first = ReplyBusyPoller.shared(for: loops[0], budget: .microseconds(50))
        #expect(ReplyBusyPoller.shared(for: loops[0], budget: .microseconds(50)) === first)
        #expect(ReplyBusyPoller.shared(for: loops[1], budget: .microseconds(50)) !== first)
        #expect(ReplyBusyPoller.shared(for: loops[0], budget: .microseconds(10)) !== first)
    }

    @Test func pollsOnlyWhileRepliesAreOutstanding() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        var fds: [CInt] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let (reader, writer) = (fds[0], fds[1])
        let poller = ReplyBusyPoller.shared(for: loop, budget: .seconds(60))
        let outcomes = try await loop.submit { () -> [ReplyBusyPoller.PollLoop.Outcome?] in
            var outcomes: [ReplyBusyPoller.PollLoop.Outcome?] = [poller.pollOnce()]
            poller.written(on: reader)
            poller.written(on: reader)
            _ = write(writer, "+OK\r\n", 5)
            outcomes.append(poller.pollOnce())
            poller.finished(on: reader)
            outcomes.append(poller.pollOnce())
            poller.finished(on: reader)
            // Nothing outstanding: no poll at all, though the socket still has bytes and the budget is a minute.
            outcomes.append(poller.pollOnce())
            return outcomes
        }.get()
        #expect(outcomes == [nil, .ready, .ready, nil])
    }

    @Test func unixSocketConnectionsAreNotPolled() throws {
        let address = try SocketAddress(unixDomainSocketPath: "/tmp/codebench-no-such.sock")
        #expect(ReplyBusyPoller.descriptor(local: address, remote: address) == nil)
    }

    @Test func repliesAreCorrectWithAndWithoutPolling() async throws {
        try await withRedisServer { server in
            for budget in [Duration.zero, .microseconds(50), .seconds(1)] {
                var configuration = try RedisClientConfiguration(url: server.url)
                configuration.replyBusyPoll = budget
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                let redis = RedisClient(configuration: configuration, eventLoopGroup: group)
                try await withTaskExecutorPreference(redis.executor) {
                    for i in 0..<200 {
                        _ = try await redis.send("SET", "key\(i)", "value\(i)")
                        #expect(try await redis.send(RedisCommand("GET", "key\(i)"), as: String.self) == "value\(i)")
                    }
                    let popped = try await redis.withDedicatedConnection { connection in
                        try await connection.send(RedisCommand("BLPOP", "empty-\(budget)", 0.1), timeout: nil)
                    }
                    #expect(popped.isNull)
                }
                let poller = ReplyBusyPoller.shared(for: group.next(), budget: .nanoseconds(budget.nanoseconds))
                let (writes, polls) = try await group.next().submit { (poller.promptWrites, poller.polls) }.get()
                // Each of the 400 commands asks for a poll; BLPOP does not. Polls themselves may be fewer:
                // a reply that NIO read before the poll task ran leaves nothing to poll for.
                #expect(writes == (budget == .zero ? 0 : 400))
                #expect(budget == .zero ? polls == 0 : (1...400).contains(polls))
                redis.close()
                try await group.shutdownGracefully()
            }
        }
    }

    @Test func callersOffTheEventLoopAreNotPolledFor() async throws {
        try await withRedisServer { server in
            var configuration = try RedisClientConfiguration(url: server.url)
            configuration.replyBusyPoll = .microseconds(50)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let redis = RedisClient(configuration: configuration, eventLoopGroup: group)
            for i in 0..<50 {
                _ = try await redis.send("SET", "key\(i)", "value\(i)")
            }
            let poller = ReplyBusyPoller.shared(for: group.next(), budget: .microseconds(50))
            #expect(try await group.next().submit { poller.promptWrites }.get() == 0)
            // The same connection, called from its event loop, is polled for: the zero above is no accident.
            try await withTaskExecutorPreference(redis.executor) {
                for i in 0..<50 { _ = try await redis.send("GET", "key\(i)") }
            }
            #expect(try await group.next().submit { poller.promptWrites }.get() == 50)
            #expect(try await group.next().submit { poller.polls }.get() > 0)
            redis.close()
            try await group.shutdownGracefully()
        }
    }
}
