import Foundation
import Testing
@testable import WrennAgent

@Suite("Runtime units")
struct RuntimeUnitTests {
    @Test func slotAddressesAreDisjointSlash30Links() throws {
        let addressing = try #require(SlotAddressing(pool: "10.200.0.0/16"))
        #expect(addressing.maxSlot == 16383)
        #expect(addressing.hostAddress(slot: 1) == "10.200.0.5")
        #expect(addressing.capsuleAddress(slot: 1) == "10.200.0.6")
        #expect(addressing.hostAddress(slot: 64) == "10.200.1.1")
        #expect(addressing.capsuleAddress(slot: 16383) == "10.200.255.254")
        #expect(addressing.poolCIDR == "10.200.0.0/16")
        #expect(SlotAddressing(pool: "10.200.0.1/16") == nil)
        #expect(SlotAddressing(pool: "10.200.0.0/30") == nil)
        #expect(SlotAddressing(pool: "banana") == nil)
    }

    @Test func allocatorRotatesThroughFreeSlots() {
        var allocator = SlotAllocator(maxSlot: 3, used: [2])
        #expect(allocator.allocate() == 1)
        #expect(allocator.allocate() == 3)
        #expect(allocator.allocate() == nil)
        allocator.release(2)
        #expect(allocator.allocate() == 2)
        #expect(allocator.claim(2) == false)
        // A freed slot is not the next one handed out while others are free.
        var rotating = SlotAllocator(maxSlot: 4)
        let first = rotating.allocate()
        #expect(first == 1)
        rotating.release(1)
        #expect(rotating.allocate() == 2)
        #expect(rotating.allocate() == 3)
        #expect(rotating.allocate() == 4)
        #expect(rotating.allocate() == 1) // wraps around to the freed slot last
    }

    @Test func networkPlanUsesArgvAndNoEgress() throws {
        let config = try #require(NetworkConfig(namePrefix: "wt-", pool: "10.201.0.0/16"))
        let plan = NetworkPlan.setup(config, slot: 7)
        #expect(plan.first == ["ip", "netns", "add", "wt-ns-7"])
        #expect(plan.contains(["ip", "link", "add", "wt-v7", "type", "veth", "peer", "name", "veth0", "netns", "wt-ns-7"]))
        #expect(plan.contains(["ip", "addr", "add", "10.201.0.29/30", "dev", "wt-v7"]))
        #expect(plan.contains(["ip", "-n", "wt-ns-7", "addr", "add", "10.201.0.30/30", "dev", "veth0"]))
        let dnat = try #require(plan.last)
        #expect(dnat.contains("DNAT") && dnat.contains("169.254.0.21") && dnat.contains("10.201.0.30"))
        // No masquerade / default route: nothing leaves the namespace except to the host end of the link.
        #expect(!plan.joined().contains("MASQUERADE"))
        #expect(!plan.contains { $0.contains("default") })
        #expect(NetworkPlan.blackhole(config) == ["ip", "route", "replace", "blackhole", "10.201.0.0/16"])
        #expect(config.slot(ofNamespace: "wt-ns-12") == 12)
        #expect(config.slot(ofNamespace: "wrenn-ns-12") == nil)
        #expect(NetworkConfig(namePrefix: "toolong-prefix") == nil)
    }

    @Test func egressAddsARouteOutAndMasqueradeInsideTheNamespaceOnly() throws {
        let config = try #require(NetworkConfig(namePrefix: "wt-", pool: "10.201.0.0/16"))
        let plain = NetworkPlan.setup(config, slot: 7)
        let egress = NetworkPlan.setup(config, slot: 7, egress: true)
        #expect(Array(egress.prefix(plain.count)) == plain)
        #expect(egress.contains(["ip", "-n", "wt-ns-7", "route", "add", "default", "via", "10.201.0.29"]))
        #expect(egress.contains(["ip", "netns", "exec", "wt-ns-7", "iptables", "-w", "-t", "nat", "-A", "POSTROUTING",
                                 "-o", "veth0", "-s", "169.254.0.21", "-j", "MASQUERADE"]))
    }

    @Test func hostGuardsDropInboundAndCrossCapsuleAndMasqueradeThePool() throws {
        let config = try #require(NetworkConfig(namePrefix: "wt-", pool: "10.201.0.0/16"))
        #expect(NetworkPlan.guardChains(config) == ("WT-IN", "WT-FWD", "WT-NAT"))
        let rules = NetworkPlan.hostGuards(config)
        let argvs = rules.map(\.argv)
        #expect(argvs.contains(["iptables", "-w", "-A", "WT-IN", "-i", "wt-v+", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"]))
        #expect(argvs.contains(["iptables", "-w", "-A", "WT-FWD", "-i", "wt-v+", "-o", "wt-v+", "-j", "DROP"]))
        #expect(argvs.contains(["iptables", "-w", "-t", "nat", "-A", "WT-NAT", "-s", "10.201.0.0/16", "!", "-d", "10.201.0.0/16", "-j", "MASQUERADE"]))
        // The capsule-to-capsule drop comes before the accept of capsule traffic.
        let drop = try #require(argvs.firstIndex { $0.contains("DROP") && $0.contains("WT-FWD") })
        let accept = try #require(argvs.firstIndex { $0.contains("ACCEPT") && $0.contains("WT-FWD") })
        #expect(drop < accept)
        // Only chain creation may fail (the chain exists on a restart).
        #expect(rules.filter(\.ignoreFailure).allSatisfy { $0.argv.contains("-N") })
        #expect(NetworkPlan.guardJumps(config).map(\.chain) == ["INPUT", "FORWARD", "POSTROUTING"])
    }

    @Test func upstreamNameserversSkipLoopbackStubs() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\nnameserver 8.8.8.8\nnameserver 9.9.9.9\nnameserver 1.1.1.1\n"
        #expect(HostFacts.upstreamNameservers(resolvConf: text) == ["10.0.0.2", "8.8.8.8", "9.9.9.9"])
        #expect(HostFacts.upstreamNameservers(resolvConf: "nameserver 127.0.0.1\n").isEmpty)
        #expect(HostFacts.upstreamNameservers(resolvConf: nil).isEmpty)
    }

    @Test func microvmArgvHasMemoryFileSerialQmpAndIncoming() {
        var machine = QemuMachine(
            accelerator: .tcg, vcpus: 2, memoryMiB: 512, memoryFile: "/d/memory.ram", kernel: "/i/vmlinux",
            initramfs: "/i/initramfs.cpio.gz", kernelCommandLine: QemuMachine.kernelCommandLine(tscKHz: 2596136, hostname: "cl-x"),
            disk: "/d/disk.qcow2", tap: "tap0", consoleLog: "/d/console.log", qmpSocket: "/d/qmp.sock", pidFile: "/d/qemu.pid")
        var argv = machine.argv
        func value(after flag: String) -> String? {
            guard let i = argv.firstIndex(of: flag), i + 1 < argv.count else { return nil }
            return argv[i + 1]
        }
        #expect(argv.first == "qemu-system-x86_64")
        #expect(value(after: "-machine") == "microvm,memory-backend=mem0")
        #expect(value(after: "-accel") == "tcg")
        #expect(value(after: "-cpu") == "max")
        #expect(value(after: "-smp") == "2")
        #expect(value(after: "-object") == "memory-backend-file,id=mem0,size=512M,mem-path=/d/memory.ram,share=on")
        #expect(value(after: "-append")?.contains("tsc_early_khz=2596136") == true)
        #expect(value(after: "-append")?.contains("wrenn.ip=169.254.0.21/30") == true)
        #expect(value(after: "-chardev") == "file,id=console,path=/d/console.log")
        #expect(value(after: "-qmp") == "unix:/d/qmp.sock,server=on,wait=off")
        #expect(argv.contains("-daemonize"))
        #expect(!argv.contains("-incoming"))
        machine.incoming = true
        machine.accelerator = .kvm
        argv = machine.argv
        #expect(value(after: "-incoming") == "defer")
        #expect(argv.last == "-S")
        #expect(value(after: "-cpu") == "host,-arch-capabilities")
    }

    @Test func tscFromCpuinfo() {
        #expect(HostFacts.tscKHz(cpuinfo: "processor\t: 0\ncpu MHz\t\t: 2596.136\n") == 2596136)
        #expect(HostFacts.tscKHz(cpuinfo: "nothing") == nil)
    }

    @Test func recordsRoundTripThroughJSON() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/wrenn-record-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/cl-a", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let layout = CapsuleLayout(root: dir, id: "cl-a")
        let machine = QemuMachine(accelerator: .tcg, vcpus: 1, memoryMiB: 512, memoryFile: layout.memory, kernel: "/k", initramfs: "/i",
                                  kernelCommandLine: "x", disk: layout.disk, tap: "tap0", consoleLog: layout.console, qmpSocket: layout.qmp, pidFile: layout.pidFile)
        let record = CapsuleRecord(id: "cl-a", template: "minimal-1c-512m", slot: 3, state: .paused, machine: machine, diskMiB: 5120,
                                   accessToken: "t", hostname: "cl-a", pid: nil, createdAt: 1, updatedAt: 2, lastError: nil)
        try layout.save(record)
        #expect(try layout.load() == record)
    }
}

@Suite("Process memory")
struct ProcessMemoryTests {
    @Test func splitsGuestRamFromTheRest() {
        let smaps = """
        55d0c0000000-55d0c0100000 r-xp 00000000 fe:00 123 /usr/bin/qemu-system-x86_64
        Size:               1024 kB
        Rss:                 800 kB
        Pss:                 400 kB
        7f0000000000-7f0020000000 rw-s 00000000 fe:00 456 /var/lib/wrenn/capsules/cl-a/memory.ram
        Size:             524288 kB
        Rss:               90000 kB
        Pss:               90000 kB
        7f1000000000-7f1000100000 rw-p 00000000 00:00 0 
        Size:               1024 kB
        Rss:                1000 kB
        Pss:                1000 kB
        """
        let memory = ProcessMemory.parse(smaps: smaps, file: "/var/lib/wrenn/capsules/cl-a/memory.ram")
        #expect(memory.rssKiB == 91800)
        #expect(memory.pssKiB == 91400)
        #expect(memory.fileRssKiB == 90000)
        #expect(memory.otherRssKiB == 1800)
    }
}

@Suite("Migration URIs")
struct MigrationURITests {
    @Test func pathsAreShellQuoted() {
        #expect(MigrationURI.readFile("/var/lib/wrenn/capsules/cl-a/state.bin") == "exec:cat '/var/lib/wrenn/capsules/cl-a/state.bin'")
        #expect(MigrationURI.writeFile("/tmp/it's $(here)/s") == #"exec:cat > '/tmp/it'\''s $(here)/s'"#)
    }
}

@Suite("Socket paths")
struct SocketPathTests {
    @Test func longDirectoriesGetAStableShortSocket() {
        #expect(SocketPath.qmp(forDirectory: "/var/lib/wrenn/capsules/cl-a") == "/var/lib/wrenn/capsules/cl-a/qmp.sock")
        let deep = "/var/lib/wrenn-test/runtime-tests/templates/.test-minimal-1c-512m-20261129101130-q94373508.boot"
        let path = SocketPath.qmp(forDirectory: deep)
        #expect(path.hasPrefix("/run/wrenn/") && path.utf8.count < 108)
        #expect(path == SocketPath.qmp(forDirectory: deep))
        #expect(path != SocketPath.qmp(forDirectory: deep + "x"))
    }
}
