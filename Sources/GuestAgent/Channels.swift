import Glibc

/// Finds and opens the channels the host can reach the agent on.
enum Channels {
    static let virtioPortName = "org.codebench.agent"
    static let vsockPort: UInt32 = 1024

    /// /dev/vportNpM of the virtio-serial port named `org.codebench.agent`. There is no udev in the
    /// guest, so no /dev/virtio-ports/ symlinks: the name is read from sysfs.
    static func findVirtioPort() -> String? {
        let base = "/sys/class/virtio-ports"
        for entry in Posix.listDirectory(base) {
            let name = Posix.readText("\(base)/\(entry)/name")?.filter { !$0.isWhitespace }
            if name == virtioPortName { return "/dev/\(entry)" }
        }
        return nil
    }

    static func openVirtioPort(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw AgentError.system("open \(path)") }
        return fd
    }

    /// A vsock listener on port 1024, any CID (Firecracker forwards host `CONNECT 1024` here).
    static func listenVsock() throws -> Int32 {
        // struct sockaddr_vm: family u16, reserved u16, port u32, cid u32, flags u8, zero[3]; built by hand
        // because linux/vm_sockets.h is not in Swift's Glibc module.
        var address = [UInt8](repeating: 0, count: 16)
        store(UInt16(AF_VSOCK), at: 0, in: &address)
        store(vsockPort, at: 4, in: &address)
        store(UInt32.max, at: 8, in: &address)  // VMADDR_CID_ANY
        return try listen(family: AF_VSOCK, address: address, what: "vsock port \(vsockPort)")
    }

    /// A Unix socket listener for the host test mode.
    static func listenUnix(_ path: String) throws -> Int32 {
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < 108 else { throw AgentError(.invalidRequest, "socket path \(path) is too long") }
        var address = [UInt8](repeating: 0, count: 2)
        store(UInt16(AF_UNIX), at: 0, in: &address)
        address += pathBytes + [0]
        unlink(path)
        return try listen(family: AF_UNIX, address: address, what: path)
    }

    static func accept(_ listener: Int32) -> Int32? {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    private static func listen(family: Int32, address: [UInt8], what: String) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentError.system("socket for \(what)") }
        let bound = address.withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard bound == 0 else {
            let error = AgentError.system("bind \(what)")
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, 4) == 0 else {
            let error = AgentError.system("listen \(what)")
            close(fd)
            throw error
        }
        return fd
    }

    private static func store<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }
}
