// codebench-egress: one guest connection to the egress proxy, served on fd 0; or, with `--listeners`,
// every connection of a worker's jailed VMs, as one long-running process.
//
// QEMU's user-mode network (libslirp) starts this once per guest TCP connection to the guestfwd address,
// with that connection's socket as stdin, stdout AND stderr. So when serving, nothing may ever be written
// to fd 1 or 2: it would land in the guest's stream. See docs/network.md.
import EgressProxy
import Glibc

let arguments = Array(CommandLine.arguments.dropFirst())

// `--check`: for operators (run by hand, or by the worker at startup), never under slirp. Validates the
// arguments; the error goes to stderr, which here is the operator's.
if arguments.contains("--check") {
    do {
        _ = try EgressArguments.parse(arguments)
        exit(0)
    } catch {
        let message = Array("codebench-egress: \(error)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(2)
    }
}

// `--listeners FD`: the one long-running proxy of a worker whose QEMUs are jailed (ListenerService).
// Its stderr is the worker's, never a guest's socket.
if let parsed = try? EgressArguments.parse(arguments), let control = parsed.listenerControlFD {
    signal(SIGPIPE, SIG_IGN)
    exit(ListenerService.run(control: control, options: parsed.options))
}

// Point stdout and stderr at /dev/null before anything else can write there, so not even a Swift
// runtime error report reaches the guest. fd 0 keeps the socket open, so closing it later still ends
// the connection.
let devNull = open("/dev/null", O_RDWR | O_CLOEXEC)
if devNull >= 0 {
    dup2(devNull, 1)
    dup2(devNull, 2)
    if devNull > 2 { close(devNull) }
}
// A guest that resets its connection must cost an EPIPE, not the process.
signal(SIGPIPE, SIG_IGN)
// No parent-death signal: libslirp double-forks us (glib's automatic reaping) into a session of our own,
// so our parent is init, not QEMU. When QEMU exits its end of our socket closes, and the relay ends the
// tunnel on that hangup instead of waiting for the upstream side.

let options: EgressOptions
do {
    options = try EgressArguments.parse(arguments).options
} catch {
    // Misconfigured: the guest learns only that; the operator finds out what with --check.
    refuse(client: 0, status: .internalServerError, message: "egress proxy misconfigured")
    exit(2)
}

exit(serve(client: 0, options: options).exitCode)
