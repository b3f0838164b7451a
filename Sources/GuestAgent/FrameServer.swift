import AgentProtocol
import FoundationEssentials
import Glibc

/// The agent's single-threaded event loop: listeners, connections and the SIGCHLD pipe in one poll().
/// A request is served to completion before the next frame is read; the protocol is one request at a time.
final class FrameServer {
    private struct Connection {
        let fd: Int32
        let name: String
        /// A virtio-serial port stays open across host (dis)connections; a socket is closed at EOF.
        let isVirtioPort: Bool
        var hostConnected: Bool
        var reader = FrameReader(maximumPayload: RequestValidation.maximumRequestPayload)
    }

    private let hello: AgentHello
    private let runner: JobRunner
    private let reaper: ChildReaper
    private let isInit: Bool
    private var listeners: [(fd: Int32, name: String)] = []
    private var connections: [Connection] = []

    init(hello: AgentHello, runner: JobRunner, reaper: ChildReaper, isInit: Bool) {
        self.hello = hello
        self.runner = runner
        self.reaper = reaper
        self.isInit = isInit
    }

    /// The host's side may not be connected yet: the hello goes out when poll() stops reporting POLLHUP.
    func addVirtioPort(fd: Int32, name: String) {
        connections.append(Connection(fd: fd, name: name, isVirtioPort: true, hostConnected: false))
    }

    func addListener(fd: Int32, name: String) { listeners.append((fd, name)) }

    var hasChannels: Bool { !listeners.isEmpty || !connections.isEmpty }

    /// For the start-up log line.
    var channelNames: [String] { connections.map(\.name) + listeners.map(\.name) }

    /// Serves forever; returns only when a host-mode agent is asked to shut down.
    func serve() {
        while true {
            probeVirtioPorts()
            let waiting = connections.contains { $0.isVirtioPort && !$0.hostConnected }
            var fds = [pollfd(fd: reaper.wakeFD, events: Int16(POLLIN), revents: 0)]
            fds += listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let live = connections.indices.filter { !connections[$0].isVirtioPort || connections[$0].hostConnected }
            fds += live.map { pollfd(fd: connections[$0].fd, events: Int16(POLLIN), revents: 0) }
            let timeout: Int32 = waiting ? 50 : (afterReplyPending ? Self.afterReplyIdleMilliseconds : -1)
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR {
                Log.error("\(AgentError.system("poll"))")
                Posix.sleep(milliseconds: 50)
                continue
            }
            if ready == 0 { finishAfterReply() }
            reaper.reap()
            for (offset, listener) in listeners.enumerated() where fds[1 + offset].revents != 0 {
                accept(listener)
            }
            var closed: [Int] = []
            for (offset, index) in live.enumerated() {
                let revents = fds[1 + listeners.count + offset].revents
                guard revents != 0 else { continue }
                if !readAndServe(index, revents: revents) { closed.append(index) }
                if shutdownRequested { return }
            }
            for index in closed.reversed() {
                close(connections[index].fd)
                connections.remove(at: index)
            }
        }
    }

    private var shutdownRequested = false
    /// Lines to log once the last reply has been sent and the host has not ended the VM.
    private var logAfterReply: [String] = []
    /// A reply went out and its log lines and clean-up (``finishAfterReply()``) are still to do.
    private var afterReplyPending = false
    /// How long the agent waits after a reply, with nothing read, before its log lines and clean-up.
    /// Why wait: the host ends a job's VM as soon as it has the result, and in a VM just restored
    /// that work (removing the cgroup and the work directory, sweeping /tmp, lines through the
    /// emulated UART) is code TCG translates for the first time, ~35 ms of QEMU CPU per VM measured
    /// in `codebench-bench vm`, for nothing. A VM that lives on does it when it next reads a message
    /// (before the read, so no request pays it in its phases) or after this much idle time.
    static let afterReplyIdleMilliseconds: Int32 = 250

    /// Logs the lines of the last reply and runs its request's clean-up.
    private func finishAfterReply() {
        guard afterReplyPending else { return }
        afterReplyPending = false
        logAfterReply.forEach(Log.info)
        logAfterReply = []
        runner.finishRequest()
    }
    /// When the last chunk of bytes arrived: where a traced request's first phase begins.
    private var lastReadAt: UInt64 = 0
    /// When the frames of that chunk were decoded: where a traced request's `decode` ends.
    private var lastDecodedAt: UInt64 = 0
    /// Reused by every read: a new 64 KiB buffer per read is 16 pages to zero (and, in a VM just
    /// restored, to fault in) before the request's first byte is looked at.
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)

    private func probeVirtioPorts() {
        for index in connections.indices where connections[index].isVirtioPort && !connections[index].hostConnected {
            var probe = pollfd(fd: connections[index].fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&probe, 1, 0)
            if probe.revents & Int16(POLLHUP) == 0 {
                connections[index].hostConnected = true
                connections[index].reader.reset()
                Log.info("host connected on \(connections[index].name)")
                send(.hello(hello), to: index)
            }
        }
    }

    private func accept(_ listener: (fd: Int32, name: String)) {
        guard let fd = Channels.accept(listener.fd) else { return }
        connections.append(Connection(fd: fd, name: listener.name, isVirtioPort: false, hostConnected: true))
        send(.hello(hello), to: connections.count - 1)
    }

    /// Returns false when the connection is gone and must be closed.
    private func readAndServe(_ index: Int, revents: Int16) -> Bool {
        finishAfterReply()
        let count = chunk.withUnsafeMutableBytes { read(connections[index].fd, $0.baseAddress!, $0.count) }
        lastReadAt = Posix.monotonicNanoseconds()
        if count < 0 && (errno == EINTR || errno == EAGAIN) { return true }
        if count <= 0 {
            guard connections[index].isVirtioPort else { return false }
            // Host side closed its end of the port; keep the port, wait for the next connection.
            connections[index].hostConnected = false
            Log.info("host disconnected from \(connections[index].name)")
            return true
        }
        let items = connections[index].reader.feed(chunk[0..<count])
        lastDecodedAt = Posix.monotonicNanoseconds()
        for item in items {
            switch item {
            case .success(let message):
                if let reply = handle(message, from: index) { send(reply, to: index) }
                // After the reply: the host has what it waits for (and usually ends the VM now), so
                // the log lines and the clean-up wait (afterReplyIdleMilliseconds). A resume's lines
                // wait for the job after it: the host sends the job as soon as it has the hello.
                // Only when there is something to do: a template is saved right after its last reply,
                // and a timeout armed then would wake every clone at its resume.
                if case .resume = message {} else { afterReplyPending = !logAfterReply.isEmpty || runner.hasPendingCleanUp }
                if shutdownRequested {
                    finishAfterReply()
                    return true
                }
            case .failure(let error):
                Log.error("bad frame on \(connections[index].name): \(error)")
                send(.error(Self.reply(to: error)), to: index)
            }
        }
        return true
    }

    private func handle(_ message: AgentMessage, from index: Int) -> AgentMessage? {
        switch message {
        case .run(let request):
            do throws(AgentError) {
                try RequestValidation.validate(request)
            } catch {
                return .error(AgentErrorReply(code: .invalidRequest, message: "request \(request.id): \(error.message)"))
            }
            if request.tracePhases {
                PhaseTrace.begin(readAt: lastReadAt, decodedAt: lastDecodedAt)
                PhaseTrace.mark("validate")
            }
            defer { PhaseTrace.disable() }
            let started = Posix.monotonicMilliseconds()
            runner.outputSink = request.streamOutput ? outputSink(for: request.id, to: index) : nil
            defer { runner.outputSink = nil }
            var result = runner.run(request)
            if request.prepareNextRequest {
                runner.prepareNext(limits: request.nextRequestLimits, count: request.preparedRequests ?? 1, forkServers: request.prepareForkServers)
            }
            if request.tracePhases {
                PhaseTrace.mark("result")
                result.phases = PhaseTrace.phases
            }
            let line = "job \(Log.printable(request.id)): \(result.verdict.rawValue) in \(Posix.monotonicMilliseconds() - started) ms"
            if request.prepareNextRequest {
                // A template is saved (a warm VM parked) as soon as this is answered: a line still on
                // its way through the emulated UART would be finished by every clone, under TCG, in
                // the middle of its job. So it goes out now, and the console is drained.
                Log.info(line)
                Log.drain()
            } else {
                logAfterReply.append(line)
            }
            return .result(result)
        case .shutdown:
            Log.info("shutdown requested")
            if isInit {
                Posix.rebootNow()
                Log.fatal("reboot failed: \(String(cString: strerror(errno)))")
                return nil
            }
            shutdownRequested = true
            return nil
        case .resume(let resume):
            let traced = resume.tracePhases == true
            if traced { PhaseTrace.begin(readAt: lastReadAt, decodedAt: lastDecodedAt) }
            defer { PhaseTrace.disable() }
            do throws(AgentError) {
                try Resume.apply(resume, system: isInit)
            } catch {
                Log.error("resume failed: \(error)")
                let code: AgentErrorReply.Code = error.code == .invalidRequest ? .invalidRequest : .internalError
                return .error(AgentErrorReply(code: code, message: "resume: \(error.message)"))
            }
            logAfterReply.append("resumed from a snapshot")
            var answer = hello
            answer.resumeNonce = resume.nonce
            if traced {
                PhaseTrace.mark("hello")
                answer.phases = PhaseTrace.phases
            }
            return .hello(answer)
        case .hello, .result, .error, .output:
            return .error(AgentErrorReply(code: .invalidRequest, message: "the agent only accepts run, resume and shutdown messages"))
        }
    }

    /// Output chunks of request `id` as frames on connection `index`. After a failed write the rest of
    /// the request's chunks are dropped: the result still carries all the output.
    private func outputSink(for id: String, to index: Int) -> OutputSink {
        var failed = false
        return { [self] stream, offset, bytes in
            guard !failed else { return }
            failed = !send(.output(OutputChunk(id: id, stream: stream, offset: offset, data: Data(bytes))), to: index)
        }
    }

    @discardableResult
    private func send(_ message: AgentMessage, to index: Int) -> Bool {
        do {
            try Posix.writeAll(connections[index].fd, try AgentFrame.encode(message, codec: .compact))
            return true
        } catch {
            Log.error("cannot send to \(connections[index].name): \(error)")
            return false
        }
    }

    /// Decoding errors can quote a lot of the payload; the host reads control frames with a small limit.
    private static let maximumMessageBytes = 2048

    private static func reply(to error: AgentFrameError) -> AgentErrorReply {
        let message = String(decoding: error.description.utf8.prefix(maximumMessageBytes), as: UTF8.self)
        return switch error.code {
        case .badMagic, .invalidPayload: AgentErrorReply(code: .malformedFrame, message: message)
        case .unsupportedVersion: AgentErrorReply(code: .unsupportedVersion, message: message)
        case .tooLarge: AgentErrorReply(code: .tooLarge, message: message)
        }
    }
}
