import FERData
import FERIO
import FERModels
import Foundation

/// Labels photos one by one as `fer predict` does: each photo read (reduced to the detector's side
/// unless a drawn or cropped output needs it whole), its faces found, or the whole image classified
/// as a face crop; annotated images and face crops written under one naming rule (`OutputNames`),
/// never over an input. A file that fails is a row with its error, and the others go on.
public struct PhotoLabelling {
    public struct Row: Encodable, Sendable {
        public var file: String
        public var faces: [FaceResult]
        public var error: String?
        public var note: String?
    }

    public let analyzer: FaceAnalyzer
    /// Classify every image whole, as a face crop (images no larger than `cropSide` always are).
    public var wholeImages = false
    /// Annotated images: a file (one photo) or a folder.
    public var annotate: String?
    /// A folder for each face as the network sees it (gray PNG at the training side).
    public var crops: String?
    /// A folder for each face with the Grad-CAM heat map of its top expression (`Explanation`).
    public var explain: String?
    /// Images no larger than this on their longer side are taken as face crops.
    public static let cropSide = 96

    public init(analyzer: FaceAnalyzer) { self.analyzer = analyzer }

    /// The image files of `inputs`: files as they are, folders walked for images, sorted.
    public static func expand(_ inputs: [String]) -> [String] {
        inputs.flatMap { path -> [String] in
            guard isFolder(path) else { return [path] }
            let items = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String]) ?? []
            return items.filter { ImageFolder.imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
        }
    }

    /// `files` labelled, a row each in order. Output names come from `allInputs` (all the run's
    /// inputs, not only this shard's), so shards name files as one run would.
    public func label(_ files: [String], allInputs: [String], progress: (Int) -> Void = { _ in }) -> [Row] {
        let stemOf = Dictionary(zip(allInputs, OutputNames.stems(allInputs)), uniquingKeysWith: { a, _ in a })
        return files.enumerated().map { i, path in
            defer { progress(i + 1) }
            do {
                return try label(path, stem: stemOf[path] ?? OutputNames.stems([path])[0], single: files.count == 1, inputs: allInputs)
            } catch {
                return Row(file: path, faces: [], error: "\(error)", note: nil)
            }
        }
    }

    func label(_ path: String, stem: String, single: Bool, inputs: [String]) throws -> Row {
        // Drawn results and saved crops use the photo at full size; labels alone need only the
        // detector's side (a JPEG then decodes reduced, several times faster).
        let photo = annotate == nil && crops == nil && explain == nil ? try analyzer.readPhoto(path)
            : try ScaledImage.read(path, channels: 3, minSide: 0, maxPixels: analyzer.reading.maxPixels)
        let image = photo.image
        let asCrop = wholeImages || max(photo.originalWidth, photo.originalHeight) <= Self.cropSide
        let faces = asCrop ? analyzer.analyzeAsCrop(image) : analyzer.analyze(photo)
        if let dir = crops, !asCrop {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, f) in faces.enumerated() {
                let side = analyzer.classifier.sourceSide
                let target = (dir as NSString).appendingPathComponent("\(stem).face\(k + 1).png")
                try OutputNames.check(target, against: inputs, option: "--crops")
                try Image(width: side, height: side, channels: 1, pixels: analyzer.faceInput(image, f.box)).write(target)
            }
        }
        if let dir = explain {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, f) in faces.enumerated() {
                let face = asCrop ? image.faceInput(side: analyzer.classifier.sourceSide) : analyzer.faceInput(image, f.box)
                guard let e = analyzer.classifier.explain(face: face) else {
                    throw DataError.mismatch(path, reason: "--explain needs a convolutional model (the \(analyzer.classifier.spec.preset.rawValue) preset has no map)")
                }
                let target = (dir as NSString).appendingPathComponent("\(stem).face\(k + 1).explain.png")
                try OutputNames.check(target, against: inputs, option: "--explain")
                try Annotator.explanation(e, face: face, className: analyzer.classifier.classNames[e.classIndex]).write(target)
            }
        }
        if let out = annotate {
            let target = single && !out.hasSuffix("/") && !Self.isFolder(out) ? out : (out as NSString).appendingPathComponent(stem + ".annotated.png")
            try OutputNames.check(target, against: inputs, option: "--annotate")
            try Annotator.annotate(image, faces, classNames: analyzer.classifier.classNames).write(target)
        }
        return Row(file: path, faces: faces, error: nil, note: faces.isEmpty ? "no face found" : asCrop ? "classified whole, as a face crop" : nil)
    }

    /// CSV, one line per face; a photo without a face, or that failed, gets a line too, so every
    /// file is accounted for. `header`: the first shard's output carries it, so that `cat` of the
    /// shards is one CSV.
    public static func csv(_ rows: [Row], classNames: [String], header: Bool) -> String {
        let columns = ["file", "face", "x", "y", "width", "height", "emotion", "confidence"] + classNames.map { $0.lowercased() } + ["note", "error"]
        var lines = header ? [columns.joined(separator: ",")] : []
        for r in rows {
            if r.faces.isEmpty {
                lines.append(([csvField(r.file)] + [String](repeating: "", count: columns.count - 3) + [csvField(r.note ?? ""), csvField(r.error ?? "")]).joined(separator: ","))
            }
            for (i, f) in r.faces.enumerated() {
                let probs = f.probabilities.map { String(format: "%.4f", $0) }
                lines.append(([csvField(r.file), "\(i)", "\(f.box.x)", "\(f.box.y)", "\(f.box.width)", "\(f.box.height)", f.emotion, String(format: "%.4f", f.confidence)]
                              + probs + [csvField(r.note ?? ""), ""]).joined(separator: ","))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// For people: each photo, its faces, and a bar per expression.
    public static func text(_ rows: [Row], classNames: [String]) -> String {
        var lines: [String] = []
        for r in rows {
            if let e = r.error { lines.append("\(r.file): error: \(e)"); continue }
            if r.faces.isEmpty { lines.append("\(r.file): no face found"); continue }
            lines.append("\(r.file): \(r.faces.count) face\(r.faces.count == 1 ? "" : "s")\(r.note.map { " (\($0))" } ?? "")")
            for (i, f) in r.faces.enumerated() {
                lines.append("  face \(i + 1) at x=\(f.box.x) y=\(f.box.y) \(f.box.width)x\(f.box.height): \(f.emotion) (\(String(format: "%.1f", 100 * f.confidence))%)")
                for (n, v) in zip(classNames, f.probabilities) {
                    lines.append("    " + n.padding(toLength: 9, withPad: " ", startingAt: 0) + String(format: "%6.1f%% ", 100 * v)
                                 + String(repeating: "█", count: Int((v * 30).rounded())))
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func isFolder(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    /// A CSV field, quoted where it holds a comma, a quote or a line break.
    public static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
