@testable import FirecrackerDriver
import Foundation
import NIOPosix
import TestSupport
import Testing

/// The VMM process handling the driver relies on: continuous, bounded draining and one kill for the
/// whole process group.
@Suite struct ProcessTests {
    @Test func outputIsDrainedContinuouslyIntoABoundedRing() async throws {
        // 4 MiB through a 64 KiB pipe: the child only finishes if someone keeps reading.
        let process = try await SpawnedProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", "yes x | head -c 4194304; echo done"],
            environment: ["PATH=/usr/bin:/bin"], outputCapacity: 4096, group: MultiThreadedEventLoopGroup.singleton)
        var status: CInt?
        _ = await eventually(timeout: .seconds(10), every: .milliseconds(4)) {
            status = process.poll()
            return status != nil
        }
        await process.settleOutput()
        await process.terminate()
        #expect(status == 0)
        #expect(process.output.totalBytes >= 4 << 20)
        #expect(process.output.snapshot().count == 4096)
        #expect(process.output.tail().hasSuffix("x\ndone\n"))
    }

    @Test func terminateKillsTheWholeProcessGroup() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Like the jailer with --new-pid-ns: the VMM is a child of what we spawned, not our child.
        let process = try await SpawnedProcess.spawn(
            executable: "/bin/sh", arguments: ["-c", "sleep 600 & echo $! > \(directory.file("pid")); wait"],
            environment: ["PATH=/usr/bin:/bin"], outputCapacity: 1024, group: MultiThreadedEventLoopGroup.singleton)
        var grandchild: pid_t?
        _ = await eventually(timeout: .seconds(2), every: .milliseconds(4)) {
            grandchild = Fixtures.pidFile(in: directory)
            return grandchild != nil
        }
        let pid = try #require(grandchild)
        #expect(Fixtures.processExists(pid))
        await process.terminate()
        #expect(process.poll().map(describeWaitStatus) == "killed by signal 9")
        // Not our child: it is gone once init has reaped it.
        _ = await eventually(timeout: .seconds(2), every: .milliseconds(4)) { !Fixtures.processExists(pid) }
        #expect(!Fixtures.processExists(pid))
    }
}
