import Glibc

extension WorkDirectory {
    /// Copies everything in this directory into `target` (an empty work directory): what judge mode gives
    /// each case, so nothing a case writes reaches the next one. Symbolic links are copied as links and
    /// never followed (the compile step, run as the job, may have made them); FIFOs, sockets and devices
    /// are left out. Copies are owned by the runner, with the originals' permission bits.
    func copyContents(to target: WorkDirectory, sandbox: Sandbox) throws {
        try Self.copyTree(from: path, to: target.path, sandbox: sandbox)
    }

    private static func copyTree(from source: String, to destination: String, sandbox: Sandbox) throws {
        for name in Posix.listDirectory(source) {
            let from = "\(source)/\(name)"
            let to = "\(destination)/\(name)"
            var info = stat()
            guard lstat(from, &info) == 0 else { throw AgentError.system("lstat \(from)") }
            let mode = info.st_mode & 0o7777 & ~mode_t(S_ISUID | S_ISGID)
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                guard mkdir(to, 0o700) == 0 else { throw AgentError.system("mkdir \(to)") }
                try copyTree(from: from, to: to, sandbox: sandbox)
                try own(to, sandbox)
                guard chmod(to, mode) == 0 else { throw AgentError.system("chmod \(to)") }
            case S_IFREG:
                try copyFile(from: from, to: to, mode: mode)
                try own(to, sandbox)
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlink(from, &buffer, buffer.count - 1)
                guard length >= 0 else { throw AgentError.system("readlink \(from)") }
                buffer[length] = 0
                guard symlink(buffer, to) == 0 else { throw AgentError.system("symlink \(to)") }
                if sandbox.confined && lchown(to, Sandbox.runnerID, Sandbox.runnerID) != 0 { throw AgentError.system("lchown \(to)") }
            default:
                continue
            }
        }
    }

    private static func own(_ path: String, _ sandbox: Sandbox) throws {
        if sandbox.confined && chown(path, Sandbox.runnerID, Sandbox.runnerID) != 0 { throw AgentError.system("chown \(path)") }
    }

    private static func copyFile(from source: String, to destination: String, mode: mode_t) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard input >= 0 else { throw AgentError.system("open \(source)") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard output >= 0 else { throw AgentError.system("open \(destination)") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw AgentError.system("read \(source)") }
            if count == 0 { break }
            try Posix.writeAll(output, Array(buffer[0..<count]))
        }
        // open() applied the umask; the copy must keep the original's bits (an executable stays executable).
        guard fchmod(output, mode) == 0 else { throw AgentError.system("chmod \(destination)") }
    }
}
