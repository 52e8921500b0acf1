import FERData
import FEREvaluation
import FERIO
import FERModels
import Foundation

/// The whole photo pipeline (detect, frame, classify) scored on a folder of labelled photos:
///
///     ROOT/<emotion>/*.jpg|png...    emotion folders: angry disgust fear happy neutral sad surprise
///
/// Each photo must hold exactly one face; a photo with none or several counts as wrong and is listed.
/// A file that cannot be read (damaged, cut short, empty, too large) is not the pipeline's answer:
/// it is listed apart (`unreadable`) and left out of the accuracy.
public enum PhotoSetEvaluation {
    /// Labelled photo paths, sorted (the layout of `ImageFolder.labelledImages`).
    public static func scan(_ root: String) throws -> [(path: String, label: Int)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else { throw DataError.missingFile(root) }
        return try ImageFolder.labelledImages(in: root)
    }

    /// One photo's outcome: the prediction, or why there is none.
    public struct Photo: Codable, Sendable {
        public var file: String
        public var label: String
        public var predicted: String?
        public var faces: Int
        public var problem: String?
        public var probabilities: [String: Float]?
        /// False when the file could not be read as an image (it then counts in no figure).
        public var readable = true
    }

    public struct Result: Codable, Sendable {
        public var root: String
        public var accuracy: Double
        public var report: ClassificationReport
        public var photos: [Photo]
        /// Readable photos that got no prediction (no face, several faces).
        public var failures: [Photo] { photos.filter { $0.readable && $0.predicted == nil } }
        /// Readable photos whose prediction was wrong or missing.
        public var wrong: [Photo] { photos.filter { $0.readable && $0.predicted != $0.label } }
        /// Files that could not be read, left out of every figure.
        public var unreadable: [Photo] { photos.filter { !$0.readable } }

        enum CodingKeys: String, CodingKey { case root, accuracy, report, photos }
    }

    public static func run(_ root: String, analyzer: FaceAnalyzer, progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        let files = try scan(root)
        let names = analyzer.classifier.classNames
        var photos: [Photo] = [], predictions: [Int] = [], labels: [Int] = []
        for (n, (path, label)) in files.enumerated() {
            var photo = Photo(file: path, label: names[label], predicted: nil, faces: 0, problem: nil, probabilities: nil)
            var prediction = -1
            do {
                let faces = analyzer.analyze(try analyzer.readPhoto(path))
                photo.faces = faces.count
                if faces.count == 1, let top = faces[0].probabilities.indices.max(by: { faces[0].probabilities[$0] < faces[0].probabilities[$1] }) {
                    prediction = top
                    photo.predicted = names[top]
                    photo.probabilities = Dictionary(uniqueKeysWithValues: zip(names, faces[0].probabilities))
                } else {
                    photo.problem = faces.isEmpty ? "no face found" : "\(faces.count) faces found"
                }
            } catch {
                photo.problem = "\(error)"
                photo.readable = false
            }
            photos.append(photo)
            if photo.readable {
                predictions.append(prediction)
                labels.append(label)
            }
            progress(n + 1, files.count)
        }
        let report = ClassificationReport(labels: labels, predictions: predictions, classNames: names)
        return Result(root: root, accuracy: report.accuracy, report: report, photos: photos)
    }
}
