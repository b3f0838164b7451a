import ArgumentParser
import Languages
import MicroVM
import Worker

/// `codebench-worker languages`: the languages of the image the worker would boot, as platforms see them.
struct LanguagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "languages",
        abstract: "List the languages of the guest image: name, aliases, version, whether it compiles.")

    @Option(help: "Directory with vmlinux, rootfs.ext4 and languages.json (default: $CODEBENCH_IMAGE_DIR or /var/cache/codebench/image/current).")
    var imageDir: String?
    @Flag(help: "Print the JSON the worker publishes in Redis instead of a table.") var json = false

    func run() throws {
        let directory = imageDir ?? GuestImage.defaultDirectory
        let listing = LanguageListing(try WorkerAssembly.imageLanguages(directory))
        print(json ? listing.json : listing.table)
    }
}
