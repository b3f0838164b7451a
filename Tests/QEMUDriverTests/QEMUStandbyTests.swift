import AgentProtocol
import MicroVM
import TestSupport
import Testing

@testable import QEMUDriver

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// Standby QEMUs (docs/snapshots.md, "Standby QEMUs"): a QEMU spawned ahead becomes exactly one
    /// VM, never one of another snapshot, never a dead one, and none is left once the worker stops.
    @Suite struct StandbyQEMUs {
        typealias Jail = CopyOnWriteSnapshots.Jail

        final class Fixture: Sendable {
            let snapshots = "/tmp/cbq-standby-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let runtimeRoot = "/tmp/cbs-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
            let driver: QEMUDriver

            init(_ jail: Jail) {
                driver = QEMUDriver(
                    configuration: .init(
                        accelerator: .tcg, snapshotDirectory: snapshots, restoreMode: .copyOnWrite,
                        jail: jail == .jailed ? QEMUJail() : nil, standbyVMMs: 1))
            }

            deinit { _ = try? runShell("rm -rf \(snapshots); rmdir \(runtimeRoot) 2>/dev/null || true") }

            var pool: QEMUStandbyPool { driver.standby! }

            /// Runs `command` in a fresh VM: its hello, its stdout, and the pid of its VMM process.
            func run(_ command: String) async throws -> (hello: AgentHello, stdout: String, vmmPID: Int32?) {
                var vm = try VMTest.configuration()
                vm.runtimeDirectory = runtimeRoot
                return try await driver.withVM(vm, logger: VMTest.logger) { session in
                    let result = try await session.run(VMTest.request(command), timeout: .seconds(20))
                    return (session.hello, result.stdoutText, (session as? QEMUSession)?.resources.process?.pid)
                }
            }

            /// Waits until a standby is parked and returns its VMM's pid.
            func parkedStandby() async throws -> Int32 {
                let parked = await eventually(timeout: .seconds(20)) { self.pool.parkedCount == 1 }
                try #require(parked, "a standby QEMU was parked")
                return try #require(pool.parkedProcessIDs.first)
            }

            var census: VMProcessCensus { VMProcessCensus.take(runtimeDirectory: runtimeRoot) }
        }

        @Test(arguments: Jail.allCases)
        func aStandbyBecomesTheNextVMAndNoneIsLeftWhenTheWorkerStops(_ jail: Jail) async throws {
            let fixture = Fixture(jail)
            let standby = Task { await fixture.driver.runStandby() }
            let first = try await fixture.run("echo one")
            #expect(first.stdout == "one\n")
            #expect(first.hello.resumeNonce != nil, "restored from the snapshot the first VM made")
            let parked = try await fixture.parkedStandby()
            #expect(first.vmmPID != parked)

            let second = try await fixture.run("echo two")
            #expect(second.stdout == "two\n")
            #expect(second.hello.resumeNonce != nil)
            #expect(second.vmmPID == parked, "the second VM is the parked QEMU")
            #expect(fixture.pool.adoptedCount == 1)
            // Each standby becomes one VM: the next one is another process.
            let next = try await fixture.parkedStandby()
            #expect(next != parked)
            #expect(kill(parked, 0) != 0, "the adopted QEMU ended with its VM")

            standby.cancel()
            await standby.value
            #expect(fixture.pool.parkedCount == 0)
            #expect(fixture.census.vmmChildren.isEmpty, "\(fixture.census)")
            #expect(fixture.census.runtimeEntries.isEmpty, "\(fixture.census)")
        }

        @Test func aDeadStandbyOrOneOfASnapshotMadeAgainIsNeverAdopted() async throws {
            let fixture = Fixture(.unjailed)
            let standby = Task { await fixture.driver.runStandby() }
            defer { standby.cancel() }
            _ = try await fixture.run("true")

            // Its QEMU killed while parked: the next VM spawns its own and runs.
            let dead = try await fixture.parkedStandby()
            kill(dead, SIGKILL)
            // Reaped: a QEMU that dies between the check and its state load fails that restore instead.
            _ = await eventually(timeout: .seconds(5)) { kill(dead, 0) != 0 }
            let afterDeath = try await fixture.run("echo alive")
            #expect(afterDeath.stdout == "alive\n")
            #expect(afterDeath.vmmPID != dead)
            #expect(fixture.pool.adoptedCount == 0)

            // The snapshot made again (removed, so the next VM makes a new template): the standby
            // holding the old one's descriptors is destroyed, not adopted.
            let old = try await fixture.parkedStandby()
            _ = try runShell("rm -rf \(fixture.snapshots)/*")
            let afterRemake = try await fixture.run("echo new")
            #expect(afterRemake.stdout == "new\n")
            #expect(afterRemake.hello.resumeNonce != nil, "restored from the new snapshot")
            #expect(afterRemake.vmmPID != old)
            #expect(fixture.pool.adoptedCount == 0)
            _ = await eventually(timeout: .seconds(5)) { kill(old, 0) != 0 }
            #expect(kill(old, 0) != 0, "the stale standby's QEMU is gone")

            standby.cancel()
            await standby.value
            #expect(fixture.census.vmmChildren.isEmpty, "\(fixture.census)")
            #expect(fixture.census.runtimeEntries.isEmpty, "\(fixture.census)")
        }
    }
}
