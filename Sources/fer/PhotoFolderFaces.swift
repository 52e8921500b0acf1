import ArgumentParser
import FERData
import FERIO
import FERTraining
import FERVision
import Foundation

/// `--face-cache` / `--no-face-cache`: where photo folders' detected faces are kept between runs.
struct FaceCacheOptions: ParsableArguments {
    @Option(help: "Folder for the photo folders' detected faces (default: ~/.cache/swift-fer).") var faceCache: String?
    @Flag(help: "Detect the photos' faces afresh, without reading or writing the cache.") var noFaceCache = false

    /// The cache folder; nil: no cache.
    var folder: String? { noFaceCache ? nil : (faceCache ?? KeyedCache.defaultFolder) }
}

/// A labelled photo folder's faces for the commands that train or fit on them, with a progress bar
/// while detecting and a summary on standard error (how many from the cache, how many left out).
enum PhotoFolderFaces {
    static func load(_ folder: String, label: String, analyzer: FaceAnalyzer, cacheFolder: String?, verbose: Bool, progressBar: Bool) throws -> PhotoFaces.Set {
        func say(_ s: String) { if verbose { FileHandle.standardError.write(Data((s + "\n").utf8)) } }
        let bar = ProgressBar(total: 1, label: "faces \(label)")
        bar.enabled = progressBar
        let set: PhotoFaces.Set
        do {
            set = try PhotoFaces.load(folder, analyzer: analyzer, cacheFolder: cacheFolder, shouldStop: { StopFlag.shared.isSet }) { done, total in
                bar.total = total; bar.update(done)
            }
        } catch let stopped as PhotoFaces.Stopped {
            bar.finish()
            FileHandle.standardError.write(Data("\(label): \(stopped)\n".utf8))
            throw ExitCode(130)
        }
        bar.finish()
        let photos = set.faces.count + set.problems.count
        say("\(label): \(photos) photos, \(set.faces.count) faces; \(set.cached) from the face cache, \(set.detected) detected")
        if let p = set.cacheProblem { say("face cache for \(folder) not used (\(p)): rebuilt") }
        if let p = set.cacheWriteProblem {
            FileHandle.standardError.write(Data("warning: the face cache for \(folder) could not be written (\(p)); training goes on, and the next run detects the faces again (--face-cache DIR, or --no-face-cache)\n".utf8))
        }
        if !set.problems.isEmpty {
            let kinds = Dictionary(grouping: set.problems) { $0.problem.hasSuffix("faces found") ? "several faces" : $0.problem == "no face found" ? "no face" : "unreadable" }
            say("\(label): \(set.problems.count) of \(photos) photos left out ("
                + kinds.sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }.joined(separator: ", ") + ")")
        }
        return set
    }
}
