#if canImport(Glibc)
import Glibc
#endif

/// `sendmsg` of bytes with file descriptors as `SCM_RIGHTS`: how the worker hands a jailed VMM what it
/// may not open itself (a snapshot file to QEMU over QMP, a listener in a VM's network namespace to the
/// egress proxy), and how the guest agent hands a judge case's stdio to its fork server. A module of its
/// own, without dependencies, because both the host and the guest agent link it.
package enum DescriptorPassing {
    /// One `sendmsg` with `MSG_NOSIGNAL`; returns what it returns (bytes sent, or -1 with errno).
    /// The descriptors travel with the first byte sent.
    package static func send(_ socket: CInt, _ bytes: ArraySlice<UInt8>, descriptors: [CInt]) -> Int {
        bytes.withUnsafeBytes { payload -> Int in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                guard !descriptors.isEmpty else { return sendmsg(socket, &message, Int32(MSG_NOSIGNAL)) }
                let dataBytes = MemoryLayout<CInt>.size * descriptors.count
                // CMSG_SPACE: the header, then the data rounded up to the header's alignment.
                let alignment = MemoryLayout<Int>.size
                let space = MemoryLayout<cmsghdr>.stride + (dataBytes + alignment - 1) / alignment * alignment
                var control = [UInt8](repeating: 0, count: space)
                return control.withUnsafeMutableBytes { controlBytes -> Int in
                    let header = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                    header.pointee.cmsg_level = SOL_SOCKET
                    header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                    header.pointee.cmsg_len = MemoryLayout<cmsghdr>.stride + dataBytes
                    for (index, descriptor) in descriptors.enumerated() {
                        controlBytes.storeBytes(
                            of: descriptor, toByteOffset: MemoryLayout<cmsghdr>.stride + index * MemoryLayout<CInt>.size,
                            as: CInt.self)
                    }
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = space
                    return sendmsg(socket, &message, Int32(MSG_NOSIGNAL))
                }
            }
        }
    }

    /// ``send(_:_:descriptors:)`` with at most one descriptor.
    package static func send(_ socket: CInt, _ bytes: ArraySlice<UInt8>, descriptor: CInt?) -> Int {
        send(socket, bytes, descriptors: descriptor.map { [$0] } ?? [])
    }
}
