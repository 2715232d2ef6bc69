import Foundation
import WrennImage
import WrennWire

/// The templates a capsule can be created from, read from the data directory: built images (`type: base`,
/// the names the control plane creates from, e.g. `minimal`) and snapshot templates (`type: snapshot`). The
/// runtime's internal base templates (`<image>-<v>c-<m>m-<stamp>`, booted caches of an image) are not listed.
struct TemplateCatalog: Sendable {
    /// `<data>/templates`.
    let templatesDirectory: String
    /// `<data>/images`, or the shared images directory the runtime was configured with.
    let imagesDirectory: String

    /// The catalog of a runtime: its own directories for QEMU, else `<data>/templates` and `<data>/images`.
    init(dataDirectory: String, runtime: any Runtime) {
        if let qemu = runtime as? QemuMicrovmRuntime {
            templatesDirectory = qemu.config.templatesDirectory
            imagesDirectory = qemu.config.imagesDirectory
        } else {
            templatesDirectory = dataDirectory + "/templates"
            imagesDirectory = dataDirectory + "/images"
        }
    }

    func image(_ name: String) -> ImageLayout { ImageLayout(directory: imagesDirectory + "/" + name) }

    static func validName(_ name: String) -> Bool {
        name.range(of: "^[a-z0-9][a-z0-9._-]{0,63}$", options: .regularExpression) != nil
    }


    /// Whether a template or image of that name exists.
    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: templatesDirectory + "/" + name)
            || image(name).isComplete
    }

    /// Kind of a name: `base` for images and booted base templates, `snapshot`, or nil when unknown.
    func kind(_ name: String) -> String? {
        if image(name).isComplete { return "base" }
        guard let record = TemplateLayout(directory: templatesDirectory + "/" + name).load() else { return nil }
        return record.kind.rawValue
    }

    /// One snapshot template or image.
    func template(_ name: String) -> AgentTemplate? {
        let image = image(name)
        if image.isComplete {
            let built = (try? image.readManifest()).flatMap { WireCoding.parseDate($0.builtAt) }
            return AgentTemplate(name: name, type: "base", vcpus: 1, memoryMB: 512, sizeBytes: Self.allocated(image.directory),
                                 createdAt: built ?? Self.modified(image.directory))
        }
        let layout = TemplateLayout(directory: templatesDirectory + "/" + name)
        guard let record = layout.load(), record.kind == .snapshot else { return nil }
        return AgentTemplate(name: name, type: "snapshot", vcpus: record.machine.vcpus, memoryMB: record.machine.memoryMiB,
                             sizeBytes: Self.allocated(layout.directory), createdAt: Date(timeIntervalSince1970: record.createdAt))
    }

    /// Images, then snapshot templates, each sorted by name.
    func list() -> [AgentTemplate] {
        let fm = FileManager.default
        let images = ((try? fm.contentsOfDirectory(atPath: imagesDirectory)) ?? []).sorted().filter { !$0.hasPrefix(".") }
        let snapshots = ((try? fm.contentsOfDirectory(atPath: templatesDirectory)) ?? []).sorted().filter { !$0.hasPrefix(".") }
        return images.compactMap(template) + snapshots.compactMap { name in
            image(name).isComplete ? nil : template(name)
        }
    }

    /// Allocated bytes of the files in a directory (sparse files count what they use).
    static func allocated(_ directory: String) -> Int64 {
        var total: Int64 = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var st = stat()
            if lstat(directory + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_blocks) * 512 }
        }
        return total
    }

    static func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? Date(timeIntervalSince1970: 0)
    }
}
