import Foundation
import Testing
@testable import WrennImage

@Suite("Image builder units")
struct ImageBuilderUnitTests {
    @Test func parsesDeb822Sources() {
        let text = """
        Types: deb
        # http://snapshot.debian.org/archive/debian/20250520T000000Z
        URIs: http://deb.example.org/debian
        Suites: bookworm bookworm-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        Types: deb
        URIs: http://deb.example.org/debian-security
        Suites: bookworm-security
        Components: main
        """
        let entries = AptSources.parseDeb822(text)
        #expect(entries.count == 2)
        #expect(AptSources.mirror(for: "bookworm", in: entries) == "http://deb.example.org/debian")
        #expect(AptSources.mirror(for: "trixie", in: entries) == nil)
    }

    @Test func parsesOneLineSources() {
        let text = """
        # comment
        deb-src http://src.example.org/debian bookworm main
        deb [arch=amd64 signed-by=/k.gpg] http://mirror.example.org/debian bookworm main contrib
        deb http://other.example.org/debian bookworm contrib
        """
        let entries = AptSources.parseOneLine(text)
        #expect(entries.count == 2)
        #expect(AptSources.mirror(for: "bookworm", in: entries) == "http://mirror.example.org/debian")
    }

    @Test func ordersModulesDependenciesFirst() {
        let dep = """
        kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
        kernel/net/core/failover.ko:
        kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/virtio/virtio_ring.ko:
        kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz
        kernel/fs/jbd2/jbd2.ko.xz:
        kernel/fs/mbcache.ko.xz:
        """
        let (order, builtIn) = KernelModules.loadOrder(wanted: ["virtio_mmio", "virtio-net", "ext4", "virtio_blk"], depText: dep)
        let names = order.map(\.name)
        #expect(builtIn == ["virtio_blk"])
        #expect(Set(names).count == names.count)
        func before(_ a: String, _ b: String) -> Bool {
            guard let i = names.firstIndex(of: a), let j = names.firstIndex(of: b) else { return false }
            return i < j
        }
        #expect(before("virtio_ring", "virtio"))
        #expect(before("virtio", "virtio_mmio"))
        #expect(before("failover", "net_failover"))
        #expect(before("net_failover", "virtio_net"))
        #expect(before("jbd2", "ext4"))
        #expect(KernelModules.name(ofPath: "kernel/fs/ext4/ext4.ko.xz") == "ext4")
    }

    @Test func rejectsNonBzImage() {
        #expect(throws: KernelImage.Failure.self) { try KernelImage.locatePayload(Data(repeating: 0, count: 4096)) }
    }

    @Test func missingToolNamesAptPackage() {
        let error = ImageBuildError.missingTool("debootstrap", aptPackage: "debootstrap")
        #expect(error.description.contains("apt-get install debootstrap"))
    }

    @Test func commandRunsArgvWithoutShell() async throws {
        let out = try await Command("printf", ["%s|", "a b", "$(echo no)"]).check()
        #expect(out.stdoutText == "a b|$(echo no)|")
        await #expect(throws: CommandError.self) { try await Command("false").check() }
        await #expect(throws: CommandError.notFound("wrenn-no-such-tool")) { try await Command("wrenn-no-such-tool").run() }
    }
}

@Suite("Image build (integration)", .serialized)
struct ImageBuildIntegrationTests {
    @Test(.enabled(if: TestSupport.isRoot, "needs root (debootstrap, chroot, mknod)"))
    func buildsMinimalImageAndReusesIt() async throws {
        let layout = try await TestSupport.image()
        #expect(layout.isComplete)
        let manifest = try layout.readManifest()
        #expect(manifest.defaultUser == "wrenn-user")
        #expect(manifest.kernelRelease.hasSuffix("cloud-amd64"))
        // Second build with the same inputs is a no-op reuse.
        let started = Date()
        let again = try await ImageBuilder(ImageBuildConfig(
            dataDirectory: TestSupport.dataDirectory, envdBinary: TestSupport.envdBinary,
            recipeDirectory: TestSupport.recipeDirectory)).build(name: TestSupport.imageName)
        #expect(again == layout)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try again.readManifest().builtAt == manifest.builtAt)
    }
}
