import MicroVM

#if canImport(Glibc)
import Glibc
#endif

/// The template's guest RAM as a memfd (docs/snapshots.md, "Guarantees of copy-on-write").
///
/// A restored VM maps it privately (`MAP_PRIVATE`, QEMU's `share=off`): the kernel allows a private
/// writable mapping of a write-sealed memfd, and gives each writer its own copy of a page. Sealed
/// `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`, no process (not even root, not the
/// worker) can change its content or size any more: `write`, `ftruncate`, `fallocate` and a shared
/// writable `mmap` fail with `EPERM`. So a template cannot change under its clones, whoever opens
/// it (`/proc/self/fd/<n>` reopens it `O_RDWR`, which is what QEMU 7.2 does).
enum SealedMemory {
    // Linux's values: memfd_create and the seals are behind _GNU_SOURCE, which Swift's Glibc module
    // does not define.
    static let addSeals: CInt = 1033  // F_ADD_SEALS
    static let getSeals: CInt = 1034  // F_GET_SEALS
    static let sealSeal: CInt = 0x1, sealShrink: CInt = 0x2, sealGrow: CInt = 0x4, sealWrite: CInt = 0x8
    private static let seekData: CInt = 3, seekHole: CInt = 4
    private static let closeOnExec: CUnsignedInt = 0x1, allowSealing: CUnsignedInt = 0x2
    /// `MFD_NOEXEC_SEAL` (Linux 6.3): the memfd's mode is 0666 instead of 0777 and it can never be
    /// made executable. Older kernels refuse it with `EINVAL`.
    private static let noExecSeal: CUnsignedInt = 0x8

    /// The seals that make the content immutable and the seal set final.
    static let seals: CInt = sealWrite | sealGrow | sealShrink | sealSeal

    private typealias MemfdCreate = @convention(c) (UnsafePointer<CChar>, CUnsignedInt) -> CInt
    private static func memfdCreate(_ name: String, _ flags: CUnsignedInt) -> CInt {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "memfd_create") else {
            errno = ENOSYS
            return -1
        }
        return unsafeBitCast(symbol, to: MemfdCreate.self)(name, flags)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A new, empty, sealable memfd of `size` bytes (its pages are allocated as they are written).
    static func create(name: String, size: Int) throws(Failure) -> CInt {
        var fd = memfdCreate(name, closeOnExec | allowSealing | noExecSeal)
        if fd < 0 && errno == EINVAL { fd = memfdCreate(name, closeOnExec | allowSealing) }
        guard fd >= 0 else { throw Failure(description: "memfd_create: \(lastError())") }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let error = lastError()
            close(fd)
            throw Failure(description: "cannot size the memfd to \(size) bytes: \(error)")
        }
        return fd
    }

    /// A sealed memfd holding what `file` holds, every page allocated.
    ///
    /// Allocated up front, holes included, because shmem has no shared zero page for faults: a VM's
    /// first touch of a hole (even a write, which then copies it) would allocate the memfd's page
    /// and charge it to that VM's cgroup on top of its private copy, twice the guest's memory for
    /// one VM, and QEMU would be OOM-killed (measured: a clone writing 190 MiB of a 256 MiB guest
    /// hit its 416 MiB limit). Allocated here, the pages are the worker's, once per process.
    /// Only the file's non-zero pages are then copied.
    static func copy(of file: CInt, size: Int, name: String) throws(Failure) -> CInt {
        let fd = try create(name: name, size: size)
        guard allocate(fd, length: size) == 0 else {
            let error = lastError()
            close(fd)
            throw Failure(description: "cannot allocate \(size) bytes of RAM for the memfd: \(error)")
        }
        do {
            try copyData(from: file, to: fd, size: size)
            try seal(fd)
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Adds ``seals`` and checks that the kernel holds them. Fails with `EBUSY` while any process
    /// still has a shared writable mapping (a template's QEMU that is not dead yet).
    static func seal(_ fd: CInt) throws(Failure) {
        guard fcntl(fd, addSeals, seals) == 0 else { throw Failure(description: "cannot seal the memfd: \(lastError())") }
        try checkSealed(fd)
    }

    static func checkSealed(_ fd: CInt) throws(Failure) {
        let held = fcntl(fd, getSeals)
        guard held >= 0, held & seals == seals else {
            throw Failure(description: "the memfd's seals are \(held), not \(seals)")
        }
    }

    /// Copies the data extents of `source` (`SEEK_DATA`/`SEEK_HOLE`) into the same offsets of
    /// `target`, skipping all-zero pages, so `target` stays as sparse as it can be.
    static func copyData(from source: CInt, to target: CInt, size: Int) throws(Failure) {
        let chunk = 1 << 20
        let page = 4096
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: page)
        defer { buffer.deallocate() }
        var offset = 0
        while offset < size {
            let data = lseek(source, off_t(offset), seekData)
            if data < 0 {
                if errno == ENXIO { return }  // no data after `offset`
                throw Failure(description: "SEEK_DATA: \(lastError())")
            }
            let hole = min(Int(lseek(source, data, seekHole)), size)
            guard hole > Int(data) else { throw Failure(description: "SEEK_HOLE: \(lastError())") }
            var position = Int(data)
            while position < hole {
                let count = pread(source, buffer.baseAddress, min(chunk, hole - position), off_t(position))
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw Failure(description: "cannot read the template's memory at \(position): \(lastError())") }
                var start = 0
                while start < count {
                    let end = min(start + page, count)
                    if !isZero(buffer[start..<end]) {
                        try writeAll(target, UnsafeRawBufferPointer(rebasing: buffer[start..<end]), at: position + start)
                    }
                    start = end
                }
                position += count
            }
            offset = hole
        }
    }

    /// `fallocate(fd, 0, 0, length)`: behind _GNU_SOURCE too.
    static func allocate(_ fd: CInt, length: Int) -> CInt {
        typealias Fallocate = @convention(c) (CInt, CInt, off_t, off_t) -> CInt
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else {
            errno = ENOSYS
            return -1
        }
        return unsafeBitCast(symbol, to: Fallocate.self)(fd, 0, 0, off_t(length))
    }

    private static func isZero(_ bytes: Slice<UnsafeMutableRawBufferPointer>) -> Bool {
        let words = UnsafeRawBufferPointer(rebasing: bytes)
        var index = 0
        let count = words.count
        while index + 8 <= count {
            if words.loadUnaligned(fromByteOffset: index, as: UInt64.self) != 0 { return false }
            index += 8
        }
        while index < count {
            if words[index] != 0 { return false }
            index += 1
        }
        return true
    }

    private static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, at offset: Int) throws(Failure) {
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw Failure(description: "cannot write at \(offset + done): \(lastError())") }
            done += written
        }
    }

    /// Bytes of RAM (or disk) `fd`'s file really takes: `st_blocks`, in 512-byte units.
    static func allocatedBytes(_ fd: CInt) -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return 0 }
        return Int(info.st_blocks) * 512
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }
}
