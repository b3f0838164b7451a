#if canImport(Glibc)
import Glibc
#endif

/// `sendmsg` of bytes with, optionally, one file descriptor as `SCM_RIGHTS`: how the worker hands a
/// jailed VMM what it may not open itself (a snapshot file to QEMU over QMP, a listener in a VM's
/// network namespace to the egress proxy).
package enum DescriptorPassing {
    /// One `sendmsg` with `MSG_NOSIGNAL`; returns what it returns (bytes sent, or -1 with errno).
    /// The descriptor, if any, travels with the first byte sent.
    package static func send(_ socket: CInt, _ bytes: ArraySlice<UInt8>, descriptor: CInt?) -> Int {
        bytes.withUnsafeBytes { payload -> Int in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                guard let descriptor else { return sendmsg(socket, &message, Int32(MSG_NOSIGNAL)) }
                let space = MemoryLayout<cmsghdr>.stride + MemoryLayout<CInt>.stride
                var control = [UInt8](repeating: 0, count: space)
                return control.withUnsafeMutableBytes { controlBytes -> Int in
                    let header = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                    header.pointee.cmsg_level = SOL_SOCKET
                    header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                    header.pointee.cmsg_len = MemoryLayout<cmsghdr>.stride + MemoryLayout<CInt>.size
                    controlBytes.storeBytes(of: descriptor, toByteOffset: MemoryLayout<cmsghdr>.stride, as: CInt.self)
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = space
                    return sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
                }
            }
        }
    }
}
