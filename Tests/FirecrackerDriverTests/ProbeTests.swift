import TestSupport
import FirecrackerDriver
import Foundation
import MicroVM
import Testing

/// The checks `doctor` reports for Firecracker, in the order an operator fixes things.
@Suite struct ProbeTests {
    @Test func parsesReleaseNumbers() {
        #expect(FirecrackerRelease(versionOutput: "Firecracker v1.16.1\n\nSupported snapshot data format versions: v8.0.0\n")
            == FirecrackerRelease(major: 1, minor: 16, patch: 1))
        #expect(FirecrackerRelease(versionOutput: "1.16.1") == FirecrackerRelease(major: 1, minor: 16, patch: 1))
        #expect(FirecrackerRelease(versionOutput: "Firecracker v1.17.0-dev") == FirecrackerRelease(major: 1, minor: 17, patch: 0))
        #expect(FirecrackerRelease(versionOutput: "garbage") == nil)
        #expect(FirecrackerRelease(major: 1, minor: 9, patch: 9) < FirecrackerInstallation.minimumVersion)
        #expect(!(FirecrackerRelease(major: 1, minor: 16, patch: 1) < FirecrackerInstallation.minimumVersion))
    }

    @Test func aMissingBinaryIsReportedAsSuch() async {
        let result = await FirecrackerDriver.probe(
            configuration: .init(firecrackerPath: "codebench-no-such-firecracker"), logger: Fixtures.logger)
        #expect(result.kind == .firecracker)
        #expect(!result.usable)
        #expect(result.reason.hasPrefix("binary missing: `codebench-no-such-firecracker` is not on PATH"))
    }

    @Test func anOldReleaseIsRefusedWithItsVersion() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("firecracker", "#!/bin/sh\necho 'Firecracker v1.4.1'\n", mode: 0o755)
        #expect(try await FirecrackerInstallation.version(of: directory.file("firecracker")) == FirecrackerRelease(major: 1, minor: 4, patch: 1))
        let result = await FirecrackerDriver.probe(configuration: .init(firecrackerPath: directory.file("firecracker")), logger: Fixtures.logger)
        #expect(!result.usable)
        #expect(result.reason.contains("is v1.4.1, older than the supported v1.16.0"))
    }

    @Test func aCurrentReleaseGetsToTheKVMAndImageChecks() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("firecracker", "#!/bin/sh\necho 'Firecracker v1.16.1'\n", mode: 0o755)
        let image = GuestImage(kernelPath: directory.file("no-vmlinux"), rootfsPath: directory.file("no-rootfs"))
        let result = await FirecrackerDriver.probe(
            configuration: .init(firecrackerPath: directory.file("firecracker")), image: image, logger: Fixtures.logger)
        #expect(!result.usable)
        if let kvm = KVMDevice.problem() {
            #expect(result.reason == kvm)
        } else {
            #expect(result.reason.hasPrefix("image not built: \(image.kernelPath)"))
        }
    }

    @Test func kvmProblemsAreNamed() {
        #expect(KVMDevice.problem(path: "/dev/codebench-no-kvm")?.contains("is missing") == true)
        // A device that opens but is not KVM: the ioctl is what tells.
        #expect(KVMDevice.problem(path: "/dev/null")?.contains("KVM_GET_API_VERSION on /dev/null failed") == true)
    }
}
