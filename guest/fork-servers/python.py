"""CodeBench's fork server for Python programs: judge cases, and single runs in restored VMs.

Why: under TCG a fresh `python3 -I -B main.py` spends ~250 ms starting the interpreter, which is most
of a judge case. The agent starts this server once per judge job (as root, in its own cgroup-less
place), and each case is forked from it instead: ~20-50 ms. A snapshot's template starts one before
it is saved (agent protocol revision 8), and every VM restored from the snapshot forks its Python
programs from its own copy of it, single runs included.

What keeps the cases apart:
- The server never sees a case's data. Each command is one byte ("F") with four descriptors: the
  case's stdin, stdout and stderr, and a memfd holding the request (cgroup, work directory, entry,
  arguments, environment). Only the forked case process reads the memfd, so nothing of one case sits
  in the memory the next case is forked from.
- Every case process is forked twice (the middle process exits at once), so it is re-parented to the
  agent (PID 1), which reaps it and gets its exit status and rusage as for any other step.
- Before any program code runs it joins the case's cgroup, starts its own session, takes the case's
  stdio, closes every other descriptor, sets RLIMIT_FSIZE, enters the work directory and drops to the
  runner user for good (setgroups/setgid/setuid as root: no capability survives). no_new_privs is
  inherited from the agent. The server stays root and runner processes cannot signal or trace it.
- The program then runs as the `__main__` module in a fresh module object, with `sys.argv`, `sys.path`
  and the environment a fresh `python3 -I -B {entry}` (or `-E -s -B` for a program with modules) has.

- The case ends the way the interpreter's own exit would look from outside, without tearing the
  interpreter down: non-daemon threads are joined, atexit handlers run, sys.stdout and sys.stderr and
  then every file object the program opened are flushed, and the exit status is the one `SystemExit`
  or an uncaught exception gives. Deallocating the whole heap at exit would write to (and so copy)
  nearly every page shared with the server: ~70-100 ms under TCG, most of a small case.

Differences from a fresh interpreter, accepted: the hash seed is shared by the cases of one job (and
by every program forked from one snapshot's server), the
modules this file imports are already in `sys.modules`, /proc/self/cmdline names this file, `__del__` methods of objects still alive at exit
do not run, and the interpreter's pages that the cases share with the server are charged to the server,
not to the case's cgroup (a few MiB less peak memory).
"""

import atexit
import builtins
import gc
import io
import os
import resource
import socket
import sys

CONTROL_FD = 3
RUNNER_ID = 1000
REQUEST_VERSION = b"1"
MAXIMUM_REQUEST_BYTES = 16 << 20


def serve():
    """Answers fork commands until the agent closes the control socket. Returns only in a case process,
    with the case's descriptors (stdin, stdout, stderr, request)."""
    control = socket.socket(fileno=CONTROL_FD)
    # Ready: the agent starts the first case's clock only now.
    control.sendall(b"R")
    while True:
        try:
            message, descriptors, _, _ = socket.recv_fds(control, 16, 4)
        except InterruptedError:
            continue
        if not message:
            sys.exit(0)
        case = None
        if message == b"F" and len(descriptors) == 4:
            case = launch(descriptors)
        if isinstance(case, tuple):
            # The case process: the control socket object must not close a descriptor number that the
            # program may reuse, so it lets go of it without closing (close_range closes it below).
            control.detach()
            return case
        for descriptor in descriptors:
            os.close(descriptor)
        control.sendall(b"%d" % (case if isinstance(case, int) else -1))


def launch(descriptors):
    """Forks the case process through a middle process; returns its pid (in the server) or the
    descriptors (in the case process)."""
    report_read, report_write = os.pipe()
    # Everything alive now is the server's: the case's collector never scans it (no copy-on-write of
    # those pages for a collection), and at exit only the program's own objects are searched for files.
    gc.freeze()
    try:
        middle = os.fork()
    except OSError:
        os.close(report_read)
        os.close(report_write)
        return -1
    if middle == 0:
        try:
            os.close(report_read)
            pid = os.fork()
        except BaseException:
            os._exit(1)
        if pid == 0:
            os.close(report_write)
            return tuple(descriptors)
        try:
            os.write(report_write, b"%d" % pid)
        finally:
            os._exit(0)
    os.close(report_write)
    reply = os.read(report_read, 32)
    os.close(report_read)
    os.waitpid(middle, 0)
    try:
        return int(reply)
    except ValueError:
        return -1


def read_request(descriptor):
    """The memfd's NUL-terminated fields: version, cgroup, work directory, entry, importable (0|1), file
    size limit (-1: none), argument count, arguments, environment count, NAME=value entries."""
    chunks = []
    total = 0
    while True:
        chunk = os.read(descriptor, 65536)
        if not chunk:
            break
        total += len(chunk)
        if total > MAXIMUM_REQUEST_BYTES:
            raise ValueError("request too large")
        chunks.append(chunk)
    fields = b"".join(chunks).split(b"\0")
    if not fields or fields[-1] != b"" or fields[0] != REQUEST_VERSION:
        raise ValueError("malformed request")
    fields = [os.fsdecode(field) for field in fields[1:-1]]
    cgroup, work, entry, importable, file_size = fields[:5]
    count = int(fields[5])
    arguments = fields[6:6 + count]
    environment_count = int(fields[6 + count])
    environment = fields[7 + count:7 + count + environment_count]
    if len(arguments) != count or len(environment) != environment_count:
        raise ValueError("malformed request")
    return cgroup, work, entry, importable == "1", int(file_size), arguments, environment


def enter_case(descriptors):
    """Everything that must hold before a line of the program runs; returns its path."""
    stdin, stdout, stderr, request = descriptors
    cgroup, work, entry, importable, file_size, arguments, environment = read_request(request)
    # Root is still needed for these two; the cgroup first, so that all the rest is charged to the case.
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
        procs.write("0")
    os.setsid()
    for target, descriptor in ((0, stdin), (1, stdout), (2, stderr)):
        os.dup2(descriptor, target)
    os.closerange(3, 1 << 20)
    if file_size >= 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    os.chdir(work)
    os.setgroups([])
    os.setgid(RUNNER_ID)
    os.setuid(RUNNER_ID)
    if os.getuid() != RUNNER_ID or os.geteuid() != RUNNER_ID or os.getegid() != RUNNER_ID:
        raise PermissionError("could not drop to the runner user")
    os.environ.clear()
    for pair in environment:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    sys.argv = [entry] + arguments
    path = os.path.abspath(entry)
    if importable:
        sys.path.insert(0, os.path.dirname(path))
    return path


def run_program(path):
    """Runs the program as `__main__` and ends the process with the status the interpreter would give."""
    main = type(sys)("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    try:
        with open(path, "rb") as source_file:
            source = source_file.read()
        exec(compile(source, path, "exec"), vars(main))
    except SystemExit as request:
        leave(exit_status(request))
    except BaseException:
        kind, value, trace = sys.exc_info()
        # The traceback starts at the program's code, not at this file's frame (the hook prints the
        # exception's own __traceback__).
        program_trace = trace.tb_next if trace is not None else None
        sys.excepthook(kind, value.with_traceback(program_trace), program_trace)
        leave(1)
    leave(0)


def exit_status(request):
    """What the interpreter makes of `SystemExit(code)`: None is 0, an int is itself, anything else is
    printed to stderr and is 1."""
    code = request.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def leave(status):
    """The interpreter's exit as the outside sees it (threads joined, atexit handlers, files flushed),
    without deallocating the heap."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            pass
    atexit._run_exitfuncs()
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            flushed = False
    # Files the program opened and did not close (say a buffered writer on fd 1) are flushed by their
    # deallocation at a normal exit; after gc.freeze() in the server only the program's objects are here.
    for candidate in gc.get_objects():
        if isinstance(candidate, io.IOBase):
            try:
                if not candidate.closed:
                    candidate.flush()
            except BaseException:
                pass
    # A failed flush of the standard streams makes the interpreter exit 120.
    os._exit(status if flushed or status != 0 else 120)


if __name__ == "__main__":
    case = serve()
    try:
        program = enter_case(case)
    except BaseException as failure:
        try:
            os.write(2, b"codebench fork server: cannot start the case: %s\n" % str(failure).encode())
        finally:
            os._exit(125)
    del case
    run_program(program)
