import Foundation

/// Where the bundled models are. SwiftPM copies `models/<name>/` into a resource folder beside the
/// executable that links them (`fer`, a test runner, or an app that depends on swift-fer), named
/// `<package>_FERBundledModels.resources` (the package's name depends on how it was added, so any
/// prefix is taken). A checkout's own `models/` is the fallback, for an executable moved away.
public enum BundledModelFiles {
    /// The folder that holds `default/`, `fast/`, `mtcnn/`, ...; nil when neither is found.
    public static let directory: String? = {
        let fm = FileManager.default
        var places = [Bundle.main.bundleURL]
        if let exe = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() { places.append(exe) }
        for place in places {
            let entries = (try? fm.contentsOfDirectory(atPath: place.path)) ?? []
            if let bundle = entries.sorted().first(where: { $0.hasSuffix("_FERBundledModels.resources") }) {
                let path = place.appendingPathComponent(bundle).path
                if fm.fileExists(atPath: path + "/mtcnn") { return path }
            }
        }
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
        return fm.fileExists(atPath: checkout + "/mtcnn") ? checkout : nil
    }()
}
