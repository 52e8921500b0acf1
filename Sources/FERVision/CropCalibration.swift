import Foundation
import FEREngine
import FERIO
import FERData

/// Measures where FER2013's framing sits relative to a detector's box, and how well a framing
/// reproduces it: each 48x48 face is upscaled 3-6x and pasted at a random place into a larger
/// noisy canvas, so the true frame is known exactly; the detector's box over it gives one sample.
public enum CropCalibration {
    /// One face pasted into a canvas: the image, and where the 48x48 frame went.
    public struct Pasted {
        public var image: Image
        public var frameX, frameY, frameSide: Double
    }

    /// Face `i` of `data` upscaled and pasted at a random place; the background is noise around the
    /// mean of the face's border, so nothing but the face looks like one. With `maxTilt` the face is
    /// also turned by a random angle in ±maxTilt degrees about its centre (heads tilt in photos).
    public static func paste(_ data: FaceDataset, _ i: Int, rng: inout SplitMix64, maxTilt: Double = 0) -> Pasted {
        let side = data.side
        let faceSide = side * (3 + Int(rng.unit() * 4))          // 144-288 px for 48x48 faces
        let canvas = faceSide * 5 / 2
        var face = Image(width: side, height: side, channels: 1, pixels: Array(data.image(i))).resized(width: faceSide, height: faceSide)
        let src = data.image(i)
        var border = 0, count = 0
        for k in 0..<side {
            border += Int(src[src.startIndex + k]) + Int(src[src.startIndex + (side - 1) * side + k])
            border += Int(src[src.startIndex + k * side]) + Int(src[src.startIndex + k * side + side - 1])
            count += 4
        }
        let mean = Float(border) / Float(count)
        var px = (0..<canvas * canvas).map { _ in UInt8(min(max(mean + rng.uniform(-20, 20), 0), 255)) }
        let ox = Int(rng.unit() * Float(canvas - faceSide)), oy = Int(rng.unit() * Float(canvas - faceSide))
        if maxTilt > 0 {
            let c = Double(faceSide) / 2
            face = face.rotated(degrees: Double(rng.uniform(-Float(maxTilt), Float(maxTilt))), centerX: c, centerY: c)
        }
        for r in 0..<faceSide {
            for c in 0..<faceSide { px[(oy + r) * canvas + ox + c] = face.pixels[r * faceSide + c] }
        }
        return Pasted(image: Image(width: canvas, height: canvas, channels: 1, pixels: px).bgr,
                      frameX: Double(ox), frameY: Double(oy), frameSide: Double(faceSide))
    }

    /// The detected box that overlaps the pasted frame most (IoU at least 0.3), if any.
    public static func box(over p: Pasted, detector: FaceDetector) -> FaceBox? {
        let truth = FaceBox(x: Int(p.frameX), y: Int(p.frameY), width: Int(p.frameSide), height: Int(p.frameSide))
        let boxes = detector.detect(p.image, minFace: Int(p.frameSide / 3), maxFace: 0, fullResolution: true)
        guard let best = boxes.max(by: { $0.iou(truth) < $1.iou(truth) }), best.iou(truth) >= 0.3 else { return nil }
        return best
    }

    /// Pastes `count` faces of `data` (a seeded sample) and calls `body` with each face's index, the
    /// pasted image and the detector's box over it (nil when not found).
    static func forEachPasted(_ data: FaceDataset, detector: FaceDetector, count: Int, seed: UInt64, maxTilt: Double = 0,
                              _ body: (Int, Pasted, FaceBox?) -> Void) {
        var rng = SplitMix64(seed: seed)
        for i in TrainingBatches.order(count: data.count, seed: seed, epoch: 0).prefix(count) {
            let p = paste(data, i, rng: &rng, maxTilt: maxTilt)
            body(i, p, box(over: p, detector: detector))
        }
    }

    public struct Measurement: Codable, Sendable {
        public var tried: Int
        public var found: Int
        public var framing: CropFraming
    }

    /// The median framing over `count` faces of `data` (a seeded sample).
    public static func measure(_ data: FaceDataset, detector: FaceDetector, count: Int, seed: UInt64,
                               progress: (Int) -> Void = { _ in }) throws -> Measurement {
        var samples: [CropFraming] = [], tried = 0
        forEachPasted(data, detector: detector, count: count, seed: seed) { _, p, b in
            if let b { samples.append(.measured(box: b, frameX: p.frameX, frameY: p.frameY, frameSide: p.frameSide)) }
            tried += 1
            progress(tried)
        }
        guard let framing = CropFraming.median(samples) else {
            throw DataError.mismatch("calibration", reason: "the \(detector.name) detector found none of the \(tried) pasted faces")
        }
        return Measurement(tried: tried, found: samples.count, framing: framing)
    }

    /// How far a crop rule lands from the true frame, in pixels of the 48x48 face: the mean
    /// absolute error of the left, top, right and bottom edges.
    public struct FramingError: Codable, Sendable {
        public var faces: Int
        public var found: Int
        public var meanEdgeError: Double
        public var medianEdgeError: Double
    }

    /// Evaluates a crop rule (box -> x, y, width, height) on `count` pasted faces of `data`.
    public static func error(_ data: FaceDataset, detector: FaceDetector, count: Int, seed: UInt64,
                             crop: (FaceBox) -> (x: Double, y: Double, width: Double, height: Double)) -> FramingError {
        var errors: [Double] = [], tried = 0
        forEachPasted(data, detector: detector, count: count, seed: seed) { _, p, b in
            tried += 1
            guard let b else { return }
            let c = crop(b), unit = Double(data.side) / p.frameSide
            let e = abs(c.x - p.frameX) + abs(c.y - p.frameY)
                + abs(c.x + c.width - p.frameX - p.frameSide) + abs(c.y + c.height - p.frameY - p.frameSide)
            errors.append(e / 4 * unit)
        }
        let sorted = errors.sorted()
        return FramingError(faces: tried, found: errors.count,
                            meanEdgeError: errors.isEmpty ? .nan : errors.reduce(0, +) / Double(errors.count),
                            medianEdgeError: sorted.isEmpty ? .nan : sorted[sorted.count / 2])
    }

    /// The whole pipeline on pasted faces: for each crop rule (`analyzers`, which share one
    /// detector), the share of `count` faces of `data` that are found and get their label (a face
    /// not found counts as wrong); faces turned by up to `maxTilt` degrees. Each face is pasted and
    /// detected once for all the rules.
    public static func pipelineAccuracy(_ data: FaceDataset, analyzers: [FaceAnalyzer], count: Int, seed: UInt64,
                                        maxTilt: Double = 0) -> (accuracy: [Double], found: Int) {
        guard let detector = analyzers.first?.detector else { return ([], 0) }
        var correct = [Int](repeating: 0, count: analyzers.count), found = 0, tried = 0
        forEachPasted(data, detector: detector, count: count, seed: seed, maxTilt: maxTilt) { i, p, b in
            tried += 1
            guard let b else { return }
            found += 1
            for (k, analyzer) in analyzers.enumerated() {
                var times = StageTimes()
                if let r = analyzer.classify(p.image, [b], times: &times).first, argmax(r.probabilities) == data.labels[i] { correct[k] += 1 }
            }
        }
        return (correct.map { Double($0) / Double(max(tried, 1)) }, found)
    }
}
