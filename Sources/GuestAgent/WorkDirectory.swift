import Glibc

/// A fresh directory per request. In the guest it is its own tmpfs, sized to the memory limit, owned by
/// the runner: files the job writes are charged to its cgroup and cannot fill the shared /tmp.
struct WorkDirectory {
    let path: String
    let mounted: Bool

    static func create(number: Int, sizeBytes: Int, sandbox: Sandbox) throws -> WorkDirectory {
        try create(label: "job-\(number)", sizeBytes: sizeBytes, sandbox: sandbox)
    }

    /// A directory named by `label` (`job-3`, `job-3-case-2`), unique among the agent's live directories.
    static func create(label: String, sizeBytes: Int, sandbox: Sandbox) throws -> WorkDirectory {
        if !sandbox.confined {
            let path = "/tmp/codebench-agent-\(getpid())-\(label)"
            removeTree(path)
            guard mkdir(path, 0o700) == 0 else { throw AgentError.system("mkdir \(path)") }
            return WorkDirectory(path: path, mounted: false)
        }
        let path = "/tmp/\(label)"
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw AgentError.system("mkdir \(path)") }
        let options = "size=\(tmpfsSize(sizeBytes)),mode=0700,uid=\(Sandbox.runnerID),gid=\(Sandbox.runnerID)"
        if mount("tmpfs", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 {
            return WorkDirectory(path: path, mounted: true)
        }
        Log.error("\(AgentError.system("mount tmpfs on \(path)")); using a plain directory")
        guard chown(path, Sandbox.runnerID, Sandbox.runnerID) == 0 else { throw AgentError.system("chown \(path)") }
        return WorkDirectory(path: path, mounted: false)
    }

    /// The tmpfs size of a directory for a memory limit of `sizeBytes`.
    static func tmpfsSize(_ sizeBytes: Int) -> Int { max(sizeBytes, 1 << 20) }

    /// Changes the size of this directory's tmpfs (empty, made ahead: ``PreparedJob``); false if it failed.
    func resized(to sizeBytes: Int) -> Bool {
        guard mounted else { return true }
        let flags = UInt(MS_REMOUNT | MS_NOSUID | MS_NODEV)
        guard mount(nil, path, nil, flags, "size=\(WorkDirectory.tmpfsSize(sizeBytes))") == 0 else {
            Log.error("\(AgentError.system("remount \(path)")); making a new work directory")
            return false
        }
        PhaseTrace.mark("remount work directory")
        return true
    }

    /// Writes a file the job may read and overwrite. `name` is a relative path (``WorkFileRules``, checked
    /// before): its directories are created, owned by the runner like the file.
    func write(_ name: String, _ bytes: [UInt8], sandbox: Sandbox) throws {
        var parent = path
        for component in name.split(separator: "/").dropLast() {
            parent += "/\(component)"
            if mkdir(parent, 0o755) != 0 && errno != EEXIST { throw AgentError.system("mkdir \(parent)") }
            if sandbox.confined && chown(parent, Sandbox.runnerID, Sandbox.runnerID) != 0 {
                throw AgentError.system("chown \(parent)")
            }
        }
        let file = "\(path)/\(name)"
        try Posix.writeFile(file, bytes)
        if sandbox.confined && chown(file, Sandbox.runnerID, Sandbox.runnerID) != 0 { throw AgentError.system("chown \(file)") }
    }

    func remove() {
        if mounted && umount2(path, Int32(MNT_DETACH)) != 0 {
            Log.error("\(AgentError.system("umount \(path)"))")
        }
        WorkDirectory.removeTree(path)
    }

    /// rm -rf without following symlinks; the job controlled the contents.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            chmod(path, 0o700)
            for name in Posix.listDirectory(path) { removeTree("\(path)/\(name)") }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
