import Foundation
import FERIO

/// The image-folder layout of FER2013 (as in the public Kaggle copy):
///
///     ROOT/train/<emotion>/*.png|jpg      -> Training
///     ROOT/val/<emotion>/...  (optional)  -> PublicTest (also `validation`, `PublicTest`)
///     ROOT/test/<emotion>/...             -> PrivateTest
///
/// with emotion folders angry, disgust, fear, happy, neutral, sad, surprise. Any image size or colour
/// is accepted and converted to 48x48 gray.
public enum ImageFolder {
    static let splitFolders: [(Split, [String])] = [
        (.training, ["train", "Training", "training"]),
        (.publicTest, ["val", "validation", "PublicTest", "valid"]),
        (.privateTest, ["test", "PrivateTest", "Test"]),
    ]
    /// The folder names that hold `split`.
    public static func folderNames(_ split: Split) -> [String] { splitFolders.first { $0.0 == split }?.1 ?? [] }
    /// The image files every folder reader accepts (what OpenCV decodes).
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"]

    /// The image files below `dir` (paths relative to it), hidden names left out. Folders reached
    /// through symbolic links are walked like any other (an emotion folder that is a link to a
    /// folder of photos, say); a folder met a second time (a link loop, two links to one folder) is
    /// walked once.
    static func images(under dir: String) throws -> [String] {
        var found: [String] = [], seen = Set<[UInt64]>()
        func walk(_ path: String, _ relative: String) throws {
            var st = stat()
            guard stat(path, &st) == 0, seen.insert([UInt64(st.st_dev), UInt64(st.st_ino)]).inserted else { return }
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw DataError.unreadable(path, reason: "cannot list the folder")
            }
            for name in names where !name.hasPrefix(".") {
                let child = (path as NSString).appendingPathComponent(name), rel = relative.isEmpty ? name : relative + "/" + name
                var cs = stat()
                guard stat(child, &cs) == 0 else { continue }  // a link to nothing
                if cs.st_mode & S_IFMT == S_IFDIR {
                    try walk(child, rel)
                } else if imageExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    found.append(rel)
                }
            }
        }
        try walk(dir, "")
        return found
    }

    /// The labelled images of a folder with one sub-folder per emotion (and any folders inside
    /// those), sorted. Folder names match case-insensitively (`Happy/` is happy); any other
    /// sub-folder is an error, never skipped.
    public static func labelledImages(in folder: String) throws -> [(path: String, label: Int)] {
        let entries: [String]
        do { entries = try FileManager.default.contentsOfDirectory(atPath: folder).sorted() } catch {
            throw DataError.unreadable(folder, reason: "cannot list the folder")
        }
        var files: [(String, Int)] = []
        for name in entries where !name.hasPrefix(".") {
            let dir = (folder as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { continue }
            guard let emotion = Emotion.allCases.first(where: { $0.folderName == name.lowercased() }) else {
                throw DataError.mismatch(dir, reason: "not an emotion folder (expected \(Emotion.allCases.map(\.folderName).joined(separator: ", ")))")
            }
            // Every image below the emotion folder, sub-folders included (`happy/2024/a.jpg` is happy).
            for n in try images(under: dir).sorted() { files.append(((dir as NSString).appendingPathComponent(n), emotion.rawValue)) }
        }
        guard !files.isEmpty else { throw DataError.emptyFolder("\(folder) (no images in emotion sub-folders)") }
        return files
    }

    public static func load(_ root: String, side: Int = 48) throws -> [Split: FaceDataset] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DataError.missingFile(root) }
        var result: [Split: FaceDataset] = [:]
        for (split, names) in splitFolders {
            guard let folder = names.map({ (root as NSString).appendingPathComponent($0) })
                .first(where: { FileManager.default.fileExists(atPath: $0) }) else { continue }
            result[split] = try loadSplit(folder, side: side)
        }
        guard result[.training] != nil || result[.privateTest] != nil else {
            throw DataError.mismatch(root, reason: "expected a train/ or test/ folder with one subfolder per emotion")
        }
        return result
    }

    /// One split folder: <emotion>/<images>.
    public static func loadSplit(_ folder: String, side: Int = 48) throws -> FaceDataset {
        let files = try labelledImages(in: folder)
        let pixels = side * side
        var images = [UInt8](repeating: 0, count: files.count * pixels)
        let failures = FailureList()
        images.withUnsafeMutableBufferPointer { buf in
            let buf = SharedPointer(buf)
            DispatchQueue.concurrentPerform(iterations: files.count) { i in
                do {
                    let face = try Image.read(files[i].0).faceInput(side: side)
                    face.withUnsafeBufferPointer { UnsafeMutableRawPointer(buf.base + i * pixels).copyMemory(from: $0.baseAddress!, byteCount: pixels) }
                } catch {
                    failures.add(i, error)
                }
            }
        }
        if let (_, e) = failures.first { throw e }
        return FaceDataset(side: side, images: images, labels: files.map(\.1), sources: files.map(\.0))
    }
}

private final class FailureList: @unchecked Sendable {  // writes hold `lock`; read after the workers end
    private var items: [(Int, Error)] = []
    private let lock = NSLock()
    func add(_ i: Int, _ e: Error) { lock.lock(); items.append((i, e)); lock.unlock() }
    var first: (Int, Error)? { items.min { $0.0 < $1.0 } }
}

/// Loads either layout: a CSV (plain or .gz) or an image-folder root.
public enum DatasetLoader {
    public static func load(_ path: String) throws -> [Split: FaceDataset] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw DataError.missingFile(path) }
        return isDir.boolValue ? try ImageFolder.load(path) : try FER2013.load(path)
    }
}
