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

extension FaceDataset {
    /// Several datasets end to end, in order. Where some carry target distributions and others
    /// only labels, the labels become one-hot targets; row numbers are kept only if all have them.
    public static func concatenated(_ parts: [FaceDataset]) throws -> FaceDataset {
        guard let first = parts.first else { throw DataError.mismatch("datasets", reason: "nothing to join") }
        for p in parts where p.side != first.side || p.classNames != first.classNames {
            throw DataError.mismatch("datasets", reason: "cannot join \(p.side)x\(p.side) faces of classes \(p.classNames) to \(first.side)x\(first.side) faces of \(first.classNames)")
        }
        guard parts.count > 1 else { return first }
        let k = first.classNames.count
        let anyTargets = parts.contains { $0.targets != nil }
        var out = FaceDataset(side: first.side, images: parts.flatMap(\.images), labels: parts.flatMap(\.labels),
                              targets: anyTargets ? parts.flatMap { p in
                                  p.targets ?? p.labels.flatMap { l in (0..<k).map { $0 == l ? Float(1) : 0 } }
                              } : nil,
                              classNames: first.classNames,
                              sources: parts.allSatisfy { $0.sources.count == $0.count } ? parts.flatMap(\.sources) : [])
        if parts.allSatisfy({ $0.rowNumbers.count == $0.count }) { out.rowNumbers = parts.flatMap(\.rowNumbers) }
        return out
    }
}

/// One named source of a training run (FER2013, or a folder of labelled photos): its training faces
/// and, where it has them, its validation faces.
public struct DataSource: Sendable {
    public var name: String
    public var train: FaceDataset?
    public var validation: FaceDataset?

    public init(name: String, train: FaceDataset?, validation: FaceDataset?) {
        self.name = name; self.train = train; self.validation = validation
    }
}
