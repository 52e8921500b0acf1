import FEREngine
import FERIO

/// The seven FER2013 expressions, in the dataset's label order.
public enum Emotion: Int, CaseIterable, Codable, Sendable {
    case angry, disgust, fear, happy, sad, surprise, neutral

    public var name: String {
        ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"][rawValue]
    }

    public static var names: [String] { allCases.map(\.name) }

    /// Folder names of the public image-folder copy of FER2013.
    public var folderName: String { name.lowercased() }
}

/// FER2013's three splits: train on Training, select on PublicTest, report PrivateTest.
public enum Split: String, CaseIterable, Codable, Sendable {
    case training = "Training"
    case publicTest = "PublicTest"
    case privateTest = "PrivateTest"
}

/// Grayscale faces with labels: `images` holds `count` images of side x side bytes, row-major.
public struct FaceDataset: Sendable {
    public var side: Int
    public var images: [UInt8]
    public var labels: [Int]
    /// Optional per-image target distributions over the classes (FER+ votes), row-major [count, classes].
    public var targets: [Float]?
    public var classNames: [String]
    /// Where each image came from (CSV row number or file path), for error messages and reports.
    public var sources: [String]
    /// Row numbers in fer2013.csv (0-based, header not counted), when loaded from the CSV: the key
    /// that joins FER+ labels.
    public var rowNumbers: [Int] = []

    public init(side: Int, images: [UInt8], labels: [Int], targets: [Float]? = nil, classNames: [String] = Emotion.names, sources: [String] = []) {
        self.side = side
        self.images = images
        self.labels = labels
        self.targets = targets
        self.classNames = classNames
        self.sources = sources
    }

    public var count: Int { labels.count }
    public var pixelsPerImage: Int { side * side }

    public func image(_ i: Int) -> ArraySlice<UInt8> { images[i * pixelsPerImage ..< (i + 1) * pixelsPerImage] }

    /// Images per class.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classNames.count)
        for l in labels { c[l] += 1 }
        return c
    }

    /// The subset at `indices`, in that order.
    public func subset(_ indices: [Int]) -> FaceDataset {
        var imgs = [UInt8]()
        imgs.reserveCapacity(indices.count * pixelsPerImage)
        for i in indices { imgs.append(contentsOf: image(i)) }
        let t = targets.map { t in indices.flatMap { i in t[i * classNames.count ..< (i + 1) * classNames.count] } }
        var d = FaceDataset(side: side, images: imgs, labels: indices.map { labels[$0] }, targets: t, classNames: classNames,
                            sources: sources.isEmpty ? [] : indices.map { sources[$0] })
        d.rowNumbers = rowNumbers.isEmpty ? [] : indices.map { rowNumbers[$0] }
        return d
    }

    /// Weights inversely proportional to class frequency, normalised to mean 1 over the samples.
    public var balancedClassWeights: [Float] {
        let counts = classCounts, n = Float(count), k = Float(classNames.count)
        return counts.map { $0 == 0 ? 0 : n / (k * Float($0)) }
    }
}
