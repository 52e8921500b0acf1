import Foundation

/// One face found in an image: where, and what expression.
public struct FaceResult: Codable, Sendable {
    public var box: FaceBox
    public var emotion: String
    public var confidence: Float
    public var probabilities: [Float]
    /// Track identity across video frames (nil for still photos).
    public var track: Int?
}

/// Time spent per stage, milliseconds.
public struct StageTimes: Codable, Sendable {
    public var decode = 0.0, detect = 0.0, preprocess = 0.0, classify = 0.0, draw = 0.0

    public init(decode: Double = 0, detect: Double = 0, preprocess: Double = 0, classify: Double = 0, draw: Double = 0) {
        self.decode = decode; self.detect = detect; self.preprocess = preprocess; self.classify = classify; self.draw = draw
    }
    public var total: Double { decode + detect + preprocess + classify + draw }

    public static func + (a: StageTimes, b: StageTimes) -> StageTimes {
        StageTimes(decode: a.decode + b.decode, detect: a.detect + b.detect, preprocess: a.preprocess + b.preprocess,
                   classify: a.classify + b.classify, draw: a.draw + b.draw)
    }
}

@inline(__always) public func milliseconds(since t: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - t.uptimeNanoseconds) / 1e6
}

/// Detect faces, crop them as the training data was cropped, classify them all in one batch, and
/// draw the results.
public final class FaceAnalyzer {
    public let detector: FaceDetecting
    public let classifier: Classifier
    /// Extra context around the detector's box, as a fraction of its size on each side. FER2013's
    /// crops include a little forehead and chin beyond a cascade's box.
    public var margin: Double
    public var tta: TestTimeAugmentation = .none

    public init(detector: FaceDetecting, classifier: Classifier, margin: Double = 0.1) {
        self.detector = detector
        self.classifier = classifier
        self.margin = margin
    }

    /// The network's input for one box: gray crop with margin, resized to the training side.
    public func faceInput(_ image: Image, _ box: FaceBox) -> [UInt8] {
        let b = box.expanded(by: margin, within: image.width, image.height)
        return image.gray.cropped(b).faceInput(side: classifier.sourceSide)
    }

    /// Faces in `image`, left to right, with their expressions.
    public func analyze(_ image: Image, times: inout StageTimes) -> [FaceResult] {
        let t = DispatchTime.now()
        let boxes = detector.detect(image)
        times.detect += milliseconds(since: t)
        return classify(image, boxes, times: &times)
    }

    /// Expressions of the faces at `boxes`, classified together in one batch.
    public func classify(_ image: Image, _ boxes: [FaceBox], times: inout StageTimes) -> [FaceResult] {
        guard !boxes.isEmpty else { return [] }
        var t = DispatchTime.now()
        let gray = image.gray
        let faces = boxes.map { gray.cropped($0.expanded(by: margin, within: image.width, image.height)).faceInput(side: classifier.sourceSide) }
        times.preprocess += milliseconds(since: t)
        t = DispatchTime.now()
        let probs = classifier.classify(faces: faces, tta: tta)
        times.classify += milliseconds(since: t)
        return zip(boxes, probs).map { box, p in
            let top = argmax(p)
            return FaceResult(box: box, emotion: classifier.classNames[top], confidence: p[top], probabilities: p, track: nil)
        }
    }

    public func analyze(_ image: Image) -> [FaceResult] {
        var t = StageTimes()
        return analyze(image, times: &t)
    }

    /// Classifies the whole image as one face crop (for images that are already faces).
    public func analyzeAsCrop(_ image: Image) -> [FaceResult] {
        let p = classifier.classify(faces: [image.faceInput(side: classifier.sourceSide)], tta: tta)[0]
        let top = argmax(p)
        return [FaceResult(box: FaceBox(x: 0, y: 0, width: image.width, height: image.height), emotion: classifier.classNames[top],
                           confidence: p[top], probabilities: p, track: nil)]
    }
}

/// Video: faces are searched in the whole frame every `fullScanInterval` frames (and whenever no
/// face is being followed); in between, only around where each tracked face was, at full
/// resolution. That keeps detection, the costly stage, to a few small regions per frame.
/// Probabilities are smoothed per track by a `FaceTracker`.
public final class VideoFaceAnalyzer {
    public let analyzer: FaceAnalyzer
    public let tracker: FaceTracker
    public var fullScanInterval: Int
    private var frame = 0
    private var last: [FaceBox] = []

    public init(_ analyzer: FaceAnalyzer, tracker: FaceTracker = FaceTracker(), fullScanInterval: Int = 10) {
        self.analyzer = analyzer
        self.tracker = tracker
        self.fullScanInterval = max(1, fullScanInterval)
    }

    public func process(_ image: Image, times: inout StageTimes) -> [FaceResult] {
        let t = DispatchTime.now()
        var boxes: [FaceBox]
        if frame % fullScanInterval == 0 || last.isEmpty {
            boxes = analyzer.detector.detect(image)
        } else {
            // Cascades work on gray; MTCNN needs the colours.
            let source = analyzer.detector is MTCNNDetector ? image : image.gray
            boxes = []
            for b in last {
                let roi = b.expanded(by: 0.5, within: image.width, image.height)
                let found = analyzer.detector.detect(source.cropped(roi), minFace: max(24, b.width * 2 / 3),
                                                         maxFace: b.width * 3 / 2, fullResolution: true)
                for f in found {
                    let g = FaceBox(x: f.x + roi.x, y: f.y + roi.y, width: f.width, height: f.height)
                    if !boxes.contains(where: { $0.iou(g) > 0.3 }) { boxes.append(g) }
                }
            }
            boxes.sort { $0.centerX < $1.centerX }
        }
        times.detect += milliseconds(since: t)
        frame += 1
        last = boxes
        return tracker.update(analyzer.classify(image, boxes, times: &times), classNames: analyzer.classifier.classNames)
    }
}

/// Boxes, labels and probability bars drawn on a BGR copy of an image.
public enum Annotator {
    static let palette: [Image.Color] = [(40, 40, 220), (40, 150, 40), (160, 60, 160), (30, 200, 250), (200, 120, 30), (0, 140, 255), (170, 170, 170)]

    public static func annotate(_ image: Image, _ faces: [FaceResult], classNames: [String], fps: Double? = nil) -> Image {
        var img = image.bgr
        let scale = max(0.45, Double(max(img.width, img.height)) / 1400)
        let thick = max(1, Int(scale * 2))
        for f in faces {
            let top = classNames.firstIndex(of: f.emotion) ?? 0
            let color = palette[top % palette.count]
            img.rectangle(f.box.x, f.box.y, f.box.width, f.box.height, color, thickness: thick)
            let label = "\(f.track.map { "#\($0) " } ?? "")\(f.emotion) \(Int((f.confidence * 100).rounded()))%"
            let size = Image.textSize(label, scale: scale, thickness: thick)
            let ty = max(size.height + 6, f.box.y - 4)
            img.rectangle(f.box.x, ty - size.height - 6, size.width + 8, size.height + 10, color, thickness: -1)
            img.text(label, f.box.x + 4, ty, scale: scale, (255, 255, 255), thickness: thick)
            // Probability bars under the box.
            let barW = max(40, f.box.width), rowH = max(10, Int(14 * scale))
            var y = f.box.y + f.box.height + 4
            for (i, p) in f.probabilities.enumerated() where y + rowH < img.height {
                let name = String(classNames[i].prefix(3))
                img.rectangle(f.box.x, y, barW, rowH - 2, (235, 235, 235), thickness: -1)
                img.rectangle(f.box.x, y, max(1, Int(Double(barW) * Double(p))), rowH - 2, palette[i % palette.count], thickness: -1)
                img.text(name, f.box.x + 2, y + rowH - 4, scale: scale * 0.6, (0, 0, 0), thickness: 1)
                y += rowH
            }
        }
        if let fps {
            img.text(String(format: "%.1f FPS", fps), 10, Int(30 * scale), scale: scale, (0, 255, 0), thickness: thick)
        }
        return img
    }
}

extension Image {
    /// The pixels inside `box` (clipped to the image).
    public func cropped(_ box: FaceBox) -> Image {
        let x0 = max(0, min(box.x, width - 1)), y0 = max(0, min(box.y, height - 1))
        let w = max(1, min(box.width, width - x0)), h = max(1, min(box.height, height - y0))
        var out = [UInt8](repeating: 0, count: w * h * channels)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<h {
                    let s = ((y0 + r) * width + x0) * channels
                    (dst.baseAddress! + r * w * channels).update(from: src.baseAddress! + s, count: w * channels)
                }
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }
}
