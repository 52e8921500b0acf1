import Foundation
import FEREngine
import FERIO
import FERData
import FERModels

/// One face found in an image: where, and what expression. In JSON the probabilities are keyed by
/// class name.
public struct FaceResult: Encodable, Sendable {
    public var box: FaceBox
    public var emotion: String
    public var confidence: Float
    /// In the order of `classNames`.
    public var probabilities: [Float]
    public var classNames: [String]
    /// Track identity across video frames (nil for still photos).
    public var track: Int?

    public init(box: FaceBox, probabilities: [Float], classNames: [String], track: Int? = nil) {
        let top = argmax(probabilities)
        self.box = box
        self.emotion = top < classNames.count ? classNames[top] : "?"
        self.confidence = probabilities.isEmpty ? 0 : probabilities[top]
        self.probabilities = probabilities
        self.classNames = classNames
        self.track = track
    }

    enum CodingKeys: String, CodingKey { case box, emotion, confidence, probabilities, track }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(box, forKey: .box)
        try c.encode(emotion, forKey: .emotion)
        try c.encode(confidence, forKey: .confidence)
        try c.encode(Dictionary(zip(classNames, probabilities), uniquingKeysWith: { a, _ in a }), forKey: .probabilities)
        try c.encodeIfPresent(track, forKey: .track)
    }
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

/// How an analyzer reads the faces it finds: the one list of these settings, for the analyzer, the
/// recognizer's `Configuration` and `fer`'s options alike.
public struct FaceReading: Sendable, Equatable {
    /// Instead of the calibrated framing: the box grown by this fraction of its size per side.
    public var margin: Double?
    public var tta: TestTimeAugmentation
    /// Level the eyes before classifying: the frame is turned by the box's `roll` (eye landmarks).
    /// Applies to the calibrated framing; boxes without a roll are cropped as they are.
    public var align: Bool
    /// Photos in which no face is found are searched again inside a border of this fraction of
    /// their longer side on every side (0: no second search). Only photos take the second search
    /// (`detect(_: ScaledImage)`), never video frames, which come at a rate.
    public var borderRetry: Double
    /// Photos of more pixels than this (read from the header, before decoding) are refused.
    public var maxPixels: Int

    public init(margin: Double? = nil, tta: TestTimeAugmentation = .none, align: Bool = false, borderRetry: Double = 0.25,
                maxPixels: Int = ImageHeader.defaultMaxPixels) {
        self.margin = margin; self.tta = tta; self.align = align; self.borderRetry = borderRetry; self.maxPixels = maxPixels
    }

    /// Why these cannot run with `detector`, naming each setting by its `fer` option; nil when they can.
    public func problem(detector: DetectorKind) -> String? {
        if !(1...1_000_000_000).contains(maxPixels) { return "--max-pixels must be between 1 and 1000000000, got \(maxPixels)" }
        if let m = margin, !(m >= 0 && m <= 1) { return "--margin must be between 0 and 1, got \(m)" }
        if !(borderRetry >= 0 && borderRetry <= 1) { return "--border-retry must be between 0 (off) and 1, got \(borderRetry)" }
        if align, margin != nil { return "--align turns the calibrated framing; it does not apply with --margin" }
        if align, !detector.findsLandmarks { return "--align needs eye landmarks, which --detector \(detector.rawValue) does not find (mtcnn does)" }
        return nil
    }
}

/// Detect faces, crop them as the training data was cropped, classify them all in one batch, and
/// draw the results.
public final class FaceAnalyzer {
    public let detector: FaceDetector
    public let classifier: Classifier
    /// How a detected box becomes the network's input: the FER2013 framing measured for this
    /// detector (`CropFraming`), unless `margin` is set.
    public var framing: CropFraming
    /// How found faces are read: framing, views, the second search, the photo size limit.
    public var reading: FaceReading

    public init(detector: FaceDetector, classifier: Classifier, reading: FaceReading = FaceReading()) {
        self.detector = detector
        self.classifier = classifier
        self.framing = detector.settings.kind.calibratedFraming
        self.reading = reading
    }

    /// The network's input for one box: the framed crop, made gray and resized to the training
    /// side (only the crop is converted, not the whole frame).
    public func faceInput(_ image: Image, _ box: FaceBox) -> [UInt8] {
        if let m = reading.margin {
            return image.cropped(box.expanded(by: m, within: image.width, image.height)).faceInput(side: classifier.sourceSide)
        }
        let f = framing.frame(box)
        if reading.align, let roll = box.roll,
           let turned = image.grayFrame(centerX: f.x + f.side / 2, centerY: f.y + f.side / 2, side: f.side, degrees: roll, out: classifier.sourceSide) {
            return turned
        }
        return image.grayFrame(x: f.x, y: f.y, side: f.side, out: classifier.sourceSide)
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
        let faces = boxes.map { faceInput(image, $0) }
        times.preprocess += milliseconds(since: t)
        t = DispatchTime.now()
        let probs = classifier.classify(faces: faces, tta: reading.tta)
        times.classify += milliseconds(since: t)
        return zip(boxes, probs).map { box, p in FaceResult(box: box, probabilities: p, classNames: classifier.classNames) }
    }

    public func analyze(_ image: Image) -> [FaceResult] {
        var t = StageTimes()
        return analyze(image, times: &t)
    }

    /// The side a photo may be decoded down to (`ScaledImage`) without changing what the detector
    /// sees: its search side (0: full size), or `decodeScale` of the photo where that is less.
    public var decodeSide: Int { detector.settings.maxSide }

    /// The smallest scale of a photo the search needs: the detector's window over the smallest face
    /// (MTCNN looking for faces of 48 pixels or more: a quarter). Faces found too small to be cut
    /// from that copy for the classifier are cut from a finer one (`find`).
    public var decodeScale: Double { Double(detector.settings.kind.searchWindow) / Double(detector.settings.minFace) }

    /// Decodes a photo at the reduced size `decodeSide` and `decodeScale` allow (over `reading.maxPixels`: an error).
    public func decodePhoto(_ bytes: [UInt8], name: String) throws -> ScaledImage {
        try ScaledImage.decode(bytes, channels: 3, minSide: decodeSide, minScale: decodeScale, maxPixels: reading.maxPixels, name: name)
    }

    /// Reads a photo as `decodePhoto` decodes it.
    public func readPhoto(_ path: String) throws -> ScaledImage { try decodePhoto(try ScaledImage.bytes(of: path), name: path) }

    /// The faces of a photo read by `readPhoto` (or decoded with `decodeSide` and `decodeScale`),
    /// and the copy of it they are in (boxes in its pixels), from which each is cut with at least
    /// the classifier's input side.
    ///
    /// A photo decoded below the detector's side (`decodeScale`: a quarter of a 1350-pixel portrait)
    /// holds its faces in enough pixels for O-Net and the classifier (48) when they are large; where
    /// it holds a smaller face, or none, it is searched again decoded at the detector's side, as a
    /// photo read without `decodeScale` is, and a face still under 48 pixels is cut from a finer
    /// decode.
    public func find(_ photo: ScaledImage) -> (photo: ScaledImage, boxes: [FaceBox]) {
        let need = classifier.sourceSide
        var photo = photo, boxes = detect(photo)
        func small(_ b: [FaceBox]) -> Bool { b.contains { min($0.width, $0.height) < need } }
        let sideReduction = ScaledImage.reduction(longerSide: max(photo.originalWidth, photo.originalHeight), minSide: decodeSide)
        if photo.reduction > sideReduction, boxes.isEmpty || small(boxes), let atSide = try? photo.decodedAgain(reduction: sideReduction) {
            photo = atSide
            boxes = detect(photo)
        }
        guard photo.reduction > 1, let smallest = boxes.map({ min($0.width, $0.height) }).min(), smallest < need else { return (photo, boxes) }
        var k = photo.reduction
        while k > 1 && smallest * photo.reduction / k < need { k /= 2 }
        guard let finer = try? photo.decodedAgain(reduction: k), finer.image.width > photo.image.width else { return (photo, boxes) }
        let f = photo.scale / finer.scale
        return (finer, boxes.map { $0.unscaled(f) })
    }

    /// The faces of a photo decoded at reduced size, in the decoded image's pixels; the smallest is
    /// still `settings.minFace` pixels of the original. When none is found, the search is repeated
    /// on the photo with a border (`reading.borderRetry`).
    public func detect(_ photo: ScaledImage) -> [FaceBox] {
        let minFace = photo.scale < 1 ? max(1, Int(Double(detector.settings.minFace) * photo.scale)) : nil
        let found = detector.detect(photo.image, minFace: minFace, maxFace: 0, fullResolution: false)
        guard found.isEmpty, reading.borderRetry > 0 else { return found }
        // A face that fills the photo (a profile picture, a tight crop) leaves the detector no
        // border: MTCNN's boxes reach past the edges, and its refinement stages see a stretched
        // face and reject it. Searching again on the photo framed by a plain border finds it.
        let pad = Int((Double(max(photo.image.width, photo.image.height)) * reading.borderRetry).rounded())
        let framed = photo.image.bordered(pad)
        let w = photo.image.width, h = photo.image.height
        return detector.detect(framed, minFace: minFace, maxFace: 0, fullResolution: false).compactMap { b in
            // Back to the photo's pixels, clipped to it; a face mostly in the border is no face.
            let x0 = max(0, b.x - pad), y0 = max(0, b.y - pad), x1 = min(w, b.x + b.width - pad), y1 = min(h, b.y + b.height - pad)
            guard x1 > x0, y1 > y0, (x1 - x0) * (y1 - y0) * 2 >= b.width * b.height else { return nil }
            return FaceBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0, roll: b.roll)
        }
    }

    /// The network's inputs for every face of a photo, left to right (what `analyze` classifies).
    public func faceInputs(_ photo: ScaledImage) -> [[UInt8]] {
        let (p, boxes) = find(photo)
        return boxes.map { faceInput(p.image, $0) }
    }

    /// A result found on the decoded copy, with its box in the original's pixels.
    public static func inOriginal(_ r: FaceResult, _ photo: ScaledImage) -> FaceResult {
        guard photo.scale < 1 else { return r }
        var r = r
        r.box = r.box.unscaled(photo.scale)
        return r
    }

    /// Faces in a photo decoded at reduced size, with boxes in the original's pixels.
    public func analyze(_ photo: ScaledImage, times: inout StageTimes) -> [FaceResult] {
        let t = DispatchTime.now()
        let (p, boxes) = find(photo)
        times.detect += milliseconds(since: t)
        return classify(p.image, boxes, times: &times).map { Self.inOriginal($0, p) }
    }

    public func analyze(_ photo: ScaledImage) -> [FaceResult] {
        var t = StageTimes()
        return analyze(photo, times: &t)
    }

    /// Classifies the whole image as one face crop (for images that are already faces).
    public func analyzeAsCrop(_ image: Image) -> [FaceResult] {
        let p = classifier.classify(faces: [image.faceInput(side: classifier.sourceSide)], tta: reading.tta)[0]
        return [FaceResult(box: FaceBox(x: 0, y: 0, width: image.width, height: image.height), probabilities: p, classNames: classifier.classNames)]
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
