import MicroVM
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension QEMUVMTests {
    /// VMs booted ahead of their jobs, with real QEMU VMs: each serves one job, a dead one is never
    /// handed out, other shapes bypass the pool, and stopping the pool leaves nothing behind.
    @Suite struct WarmPool {
        /// As a worker with warm VMs has it: the snapshot's template prepares the next two jobs, one
        /// for the priming and one for the job (VMConfiguration.snapshotPreparedJobs).
        private static func configuration(memoryMiB: Int = 256) throws -> VMConfiguration {
            var vm = try VMTest.configuration(memoryMiB: memoryMiB)
            vm.snapshotPreparedJobs = 2
            return vm
        }

        private func startPool(size: Int) throws -> (WarmVMPool, Task<Void, Never>) {
            let pool = WarmVMPool(base: VMTest.driver, configuration: try Self.configuration(), size: size, logger: VMTest.logger)
            return (pool, Task { await pool.run() })
        }

        private func bootID(_ pool: WarmVMPool, memoryMiB: Int = 256) async throws -> String {
            try await bootIDAndWait(pool, memoryMiB: memoryMiB).id
        }

        /// The guest's boot id, and how long the job waited for its VM (`bootDuration`).
        private func bootIDAndWait(_ pool: WarmVMPool, memoryMiB: Int = 256) async throws -> (id: String, wait: Duration) {
            try await pool.withVM(try Self.configuration(memoryMiB: memoryMiB), logger: VMTest.logger) { session in
                let result = try await session.run(VMTest.request("cat /proc/sys/kernel/random/boot_id"), timeout: .seconds(20))
                #expect(result.verdict == .ok, "\(result.summary)")
                return (result.stdoutText, session.bootDuration)
            }
        }

        @Test func jobsStartOnParkedVMsAndEachVMServesOneJob() async throws {
            let (pool, running) = try startPool(size: 1)
            var bootIDs: [String] = []
            var warmWaits: [Duration] = []
            for _ in 0..<3 {
                #expect(await eventually(timeout: .seconds(60)) { pool.idleCount == 1 }, "a VM is parked ahead of the job")
                let (id, wait) = try await bootIDAndWait(pool)
                bootIDs.append(id)
                warmWaits.append(wait)
            }
            #expect(pool.handedOut == 3)
            #expect(Set(bootIDs).count == 3, "every job had a VM of its own: \(bootIDs)")

            // Another VM shape boots its own VM and leaves the parked one alone.
            #expect(await eventually(timeout: .seconds(60)) { pool.idleCount == 1 })
            let (_, coldWait) = try await bootIDAndWait(pool, memoryMiB: 320)
            #expect(pool.handedOut == 3)
            #expect(pool.idleCount == 1)
            // A job on a parked VM waited for the hand-off, not for a boot: its boot time says so.
            #expect(warmWaits.allSatisfy { $0 < coldWait }, "warm \(warmWaits) vs cold \(coldWait)")

            running.cancel()
            await running.value
            let after = VMTest.census()
            #expect(after.vmmChildren.isEmpty, "stopping the pool destroys the parked VM: \(after)")
            #expect(after.runtimeEntries.isEmpty, "\(after)")
        }

        /// A parked VM ran the pool's warm-up: its job is the agent's next request after the one a VM
        /// straight from the driver serves (a snapshot's template may have served one before both), and
        /// nothing of the warm-up is left for the job to find: no directory, no cgroup, no process.
        @Test func aParkedVMWasPrimedAndKeepsNothingOfItsWarmUp() async throws {
            let command = "pwd; ls -A /tmp; ls -d /sys/fs/cgroup/job-*; stat -c %U /proc/[0-9]* | sort -u | tr '\\n' ' '"
            func listing(_ driver: any MicroVMDriver) async throws -> [String] {
                try await driver.withVM(try Self.configuration(), logger: VMTest.logger) { session in
                    let result = try await session.run(VMTest.request(command), timeout: .seconds(20))
                    #expect(result.verdict == .ok, "\(result.summary)")
                    return result.stdoutText.split(separator: "\n").map(String.init)
                }
            }
            let unprimed = try await listing(VMTest.driver)
            let (pool, running) = try startPool(size: 1)
            #expect(await eventually(timeout: .seconds(60)) { pool.idleCount == 1 }, "a VM is parked ahead of the job")
            let primed = try await listing(pool)
            running.cancel()
            await running.value
            #expect(pool.handedOut == 1)

            func number(_ listing: [String]) -> Int? { listing.first.flatMap { Int($0.dropFirst("/tmp/job-".count)) } }
            let plain = try #require(number(unprimed), "\(unprimed)")
            #expect(number(primed) == plain + 1, "the warm-up was the parked VM's request before the job: \(primed) vs \(unprimed)")
            let own = "job-\(plain + 1)"
            #expect(primed.filter { $0.hasPrefix("job-") } == [own], "only the job's own directory in /tmp: \(primed)")
            #expect(primed.filter { $0.hasPrefix("/sys/fs/cgroup/job-") } == ["/sys/fs/cgroup/\(own)"], "only the job's own cgroup: \(primed)")
            // Only root (the agent, kernel threads) and the job's own processes as the runner user.
            #expect(primed.last?.split(separator: " ").sorted() == ["root", "runner"], "\(primed)")
        }

        @Test func aParkedVMThatDiedIsReplacedNotHandedOut() async throws {
            let (pool, running) = try startPool(size: 1)
            defer { running.cancel() }
            #expect(await eventually(timeout: .seconds(60)) { pool.aliveIdleCount == 1 })
            let qemu = VMTest.census().vmmChildren
            #expect(qemu.count == 1, "\(qemu)")
            for pid in qemu { kill(pid, SIGKILL) }
            #expect(await eventually(timeout: .seconds(10)) { pool.aliveIdleCount == 0 }, "the agent connection closed with QEMU")

            // The job gets a working VM all the same: the dead one is discarded, a fresh one booted.
            let id = try await bootID(pool)
            #expect(id.count == 37, "\(id)")
            #expect(pool.handedOut == 0)

            running.cancel()
            await running.value
            #expect(VMTest.census().vmmChildren.isEmpty, "\(VMTest.census())")
        }
    }
}
