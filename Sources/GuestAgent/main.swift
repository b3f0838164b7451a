import AgentProtocol
import Glibc

// codebench-agent: runs jobs inside the guest for the host, over virtio-serial (QEMU) or vsock
// (Firecracker); `--listen-unix PATH` serves the same protocol on the host for development and tests.

let agentVersion = "0.1.0"
let isInit = getpid() == 1

func usage() -> Never {
    Log.error("usage: codebench-agent [--listen-unix PATH] [--version]")
    exit(2)
}

/// PID 1 must never exit (the kernel would panic): log, then end the VM (QEMU runs with -no-reboot).
func die(_ message: String) -> Never {
    Log.fatal(message)
    if isInit {
        Posix.rebootNow()
        while true { pause() }
    }
    exit(1)
}

var unixSocketPath: String?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--listen-unix":
        guard let path = arguments.popFirst() else { usage() }
        unixSocketPath = path
    case "--version":
        print("codebench-agent \(agentVersion) protocol v\(agentProtocolVersion)")
        exit(0)
    default:
        usage()
    }
}

// A host that hangs up must not kill the agent with SIGPIPE; jobs get default dispositions back at spawn.
signal(SIGPIPE, SIG_IGN)
// A parent may have started us with signals blocked (test runners do); SIGCHLD and SIGTERM must get through.
var noSignalsBlocked = sigset_t()
sigemptyset(&noSignalsBlocked)
sigprocmask(SIG_SETMASK, &noSignalsBlocked, nil)
// The kernel starts init without PATH; posix_spawnp needs one.
setenv("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", 0)
var noCoreDumps = rlimit(rlim_cur: 0, rlim_max: 0)
setrlimit(Int32(RLIMIT_CORE.rawValue), &noCoreDumps)

do {
    if isInit {
        // Before the hello (and so before a snapshot): a restored VM has its network already up.
        do {
            try GuestNetwork.configure()
            if GuestNetwork.present { Log.info("network: \(GuestNetwork.interface) \(GuestNetwork.address), egress only through \(GuestNetwork.proxy)") }
        } catch {
            Log.error("network setup failed: \(error)")
        }
    }
    PhaseTrace.reserve()
    let reaper = try ChildReaper()
    let sandbox = Sandbox.detect()
    if let reason = sandbox.unconfinedReason { Log.info("jobs run unconfined: \(reason)") }
    try sandbox.prepareAgent()
    let hello = AgentHello(agentVersion: agentVersion, kernel: Posix.kernelDescription())
    let server = FrameServer(hello: hello, runner: JobRunner(sandbox: sandbox, reaper: reaper, languages: AgentLanguages.load()), reaper: reaper, isInit: isInit)

    if let unixSocketPath {
        server.addListener(fd: try Channels.listenUnix(unixSocketPath), name: unixSocketPath)
    } else {
        // Built-in drivers have probed before init runs; the short retry only covers a slow sysfs.
        for attempt in 0..<20 {
            if let port = Channels.findVirtioPort() {
                server.addVirtioPort(fd: try Channels.openVirtioPort(port), name: port)
                break
            }
            if attempt == 19 { Log.info("no virtio-serial port named \(Channels.virtioPortName)") } else { Posix.sleep(milliseconds: 10) }
        }
        do {
            server.addListener(fd: try Channels.listenVsock(), name: "vsock:\(Channels.vsockPort)")
        } catch {
            Log.info("no vsock listener: \(error)")
        }
    }
    guard server.hasChannels else { die("no channel to the host (neither virtio-serial nor vsock)") }
    Log.info("\(agentVersion) ready (protocol v\(agentProtocolVersion), \(hello.kernel)), serving \(server.channelNames.joined(separator: ", "))")
    server.serve()
    if let unixSocketPath { unlink(unixSocketPath) }
} catch {
    die("\(error)")
}
if isInit { die("serve loop ended") }
