import Glibc

/// Caps how many proxy processes serve one VM at once.
///
/// Each connection is its own process, so the count lives in the file system: a directory per VM holds
/// `slot-0` … `slot-(N-1)`, and a process holds a slot by keeping an exclusive flock on one of them.
/// The kernel drops the lock when the process exits, however it exits, so a crashed proxy never leaks
/// a slot and there is no counter to repair.
public struct ConnectionSlot: ~Copyable {
    /// Which slot file is held, 0..<count.
    public let index: Int
    private let fd: CInt

    private init(index: Int, fd: CInt) {
        self.index = index
        self.fd = fd
    }

    /// Why no slot could be taken.
    public enum Failure: Error, Equatable {
        /// All `count` slots are held by live connections.
        case allTaken(count: Int)
        /// The directory or a slot file could not be created or opened (the proxy refuses: fail closed).
        case unusable(String)
    }

    /// Takes the first free slot in `directory` (created with mode 0700 if missing), creating slot
    /// files with mode 0600 as needed. Slot files are opened without following symlinks.
    public static func acquire(directory: String, count: Int) throws(Failure) -> ConnectionSlot {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw .unusable("mkdir \(directory): \(Connector.errorText(errno))")
        }
        for index in 0..<count {
            let path = "\(directory)/slot-\(index)"
            let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0o600)
            guard fd >= 0 else { throw .unusable("open \(path): \(Connector.errorText(errno))") }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { return ConnectionSlot(index: index, fd: fd) }
            let error = errno
            close(fd)
            if error != EWOULDBLOCK && error != EINTR { throw .unusable("flock \(path): \(Connector.errorText(error))") }
        }
        throw .allTaken(count: count)
    }

    /// Gives the slot back (closing the file drops the flock). Call it when the connection ends: a
    /// noncopyable value may be destroyed right after its last use, so an unused slot would be freed early.
    public consuming func release() {
        let fd = self.fd
        discard self
        close(fd)
    }

    deinit { close(fd) }
}
