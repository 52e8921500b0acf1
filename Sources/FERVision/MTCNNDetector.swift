import Foundation
import FEREngine
import FERIO
import FERData

/// MTCNN face detection (Zhang et al. 2016) as facenet-pytorch runs it: P-Net proposes faces over
/// an image pyramid, R-Net and O-Net refine and filter them, each stage followed by non-maximum
/// suppression; O-Net also gives five landmarks (eyes, nose, mouth corners).
public final class MTCNNDetector: FaceDetector {
    /// Image pyramid step, and the face-probability thresholds of P-Net, R-Net and O-Net (facenet-pytorch's).
    static let pyramidFactor = 0.709
    static let thresholds: [Float] = [0.6, 0.7, 0.7]

    public struct Face: Sendable {
        public var box: FaceBox
        public var score: Float
        /// (x, y) of left eye, right eye, nose, left and right mouth corner, in image pixels.
        public var landmarks: [(Float, Float)]
    }

    struct Candidate {
        var x1, y1, x2, y2: Float
        var score: Float
        var reg: (Float, Float, Float, Float) = (0, 0, 0, 0)
        var landmarks: [(Float, Float)] = []

        /// Box and landmarks finite and within a million pixels: they can be cut and converted to whole pixels.
        /// Anything else is a network's garbage, dropped rather than trapped on.
        var isPlausible: Bool {
            ([x1, y1, x2, y2] + landmarks.flatMap { [$0.0, $0.1] }).allSatisfy { $0.isFinite && abs($0) < 1e6 }
        }
    }

    public let networks: MTCNNNetworks
    public let settings: DetectorSettings

    public init(weights: String, settings: DetectorSettings = DetectorSettings()) throws {
        networks = try MTCNNNetworks(weights: weights, precision: settings.precision)
        self.settings = settings
    }

    /// A batch of BGR images as the networks' [N, 3, H, W] RGB input, scaled (x - 127.5) / 128.
    ///
    /// Every new input shape costs new oneDNN primitives (compiled code), and a video's tracked
    /// regions or a photo collection bring a new shape almost every time. So the batch is padded to
    /// `batch` images and each image to `width` x `height` (right and bottom, with 0: mid-gray; the
    /// images may differ in size, each is padded to the largest or to width x height);
    /// callers round these up (`bucket`) and ignore what the padding produced.
    static func input(_ images: [Image], batch: Int? = nil, width: Int? = nil, height: Int? = nil, channelsLast: Bool = false) -> Tensor {
        let maxH = images.map(\.height).max() ?? 1, maxW = images.map(\.width).max() ?? 1
        let h = max(height ?? maxH, maxH), w = max(width ?? maxW, maxW), plane = h * w, n = max(batch ?? images.count, images.count)
        // BGR interleaved bytes to normalised RGB, row by row through raw pointers (no bounds checks
        // in the inner loop): on a photo's first pyramid level this conversion was a large part of
        // the time MTCNN spends outside oneDNN. Written straight into the network's input, as RGB
        // planes or, for int8 networks, interleaved RGB (their first layer's layout).
        return Tensor(images: [n, 3, h, w], channelsLast: channelsLast) { out in
            guard let base = out.baseAddress else { return }
            for (k, img) in images.enumerated() {
                let ih = img.height, iw = img.width
                img.bgr.pixels.withUnsafeBufferPointer { src in
                    guard let s = src.baseAddress else { return }
                    for y in 0..<ih {
                        let row = s + y * iw * 3
                        if channelsLast {
                            let o = base + ((k * h + y) * w) * 3
                            for x in 0..<iw {
                                let p = row + 3 * x, q = o + 3 * x
                                q[0] = (Float(p[2]) - 127.5) * 0.0078125
                                q[1] = (Float(p[1]) - 127.5) * 0.0078125
                                q[2] = (Float(p[0]) - 127.5) * 0.0078125
                            }
                        } else {
                            let r = base + (k * 3) * plane + y * w, g = r + plane, b = g + plane
                            for x in 0..<iw {
                                let p = row + 3 * x
                                b[x] = (Float(p[0]) - 127.5) * 0.0078125
                                g[x] = (Float(p[1]) - 127.5) * 0.0078125
                                r[x] = (Float(p[2]) - 127.5) * 0.0078125
                            }
                        }
                    }
                }
            }
        }
    }

    /// `n` rounded up to a multiple of `step`: few distinct shapes, little padding.
    static func bucket(_ n: Int, _ step: Int) -> Int { (n + step - 1) / step * step }

    /// Batch sizes of R-Net and O-Net: 1, 2, 4, 8, then multiples of 8 up to 64, then of 32. The
    /// small ones are a video's: O-Net re-fits the one or two faces it tracks every frame, and a batch
    /// padded to 8 did 8 faces' work for one.
    static func batchBucket(_ n: Int) -> Int {
        guard n > 8 else { return [1, 2, 4, 8].first { $0 >= n } ?? 8 }
        return n <= 64 ? bucket(n, 8) : bucket(n, 32)
    }

    public func detect(_ image: Image, minFace: Int?, maxFace: Int, fullResolution: Bool) -> [FaceBox] {
        let smallest = minFace ?? settings.minFace
        // The search runs as on a copy whose longer side is at most maxSide: P-Net never sees a face
        // under 12 pixels of that copy. The copy itself is never made: the pyramid's first level is
        // shrunk from the image directly, and R-Net's and O-Net's crops come from the pyramid.
        let longest = max(image.width, image.height)
        let scale = fullResolution || settings.maxSide <= 0 || longest <= settings.maxSide ? 1 : Double(settings.maxSide) / Double(longest)
        return faces(image, minFace: max(12 / scale, Double(smallest))).map(\.box).filter { b in
            // The minimum is a promise: no face smaller than asked (P-Net's coarse levels can still
            // propose one, which the refinement then shrinks).
            min(b.width, b.height) >= smallest && (maxFace <= 0 || b.width <= maxFace)
        }
    }

    /// Faces with their scores and landmarks; `minFace` (pixels of `image`) defaults to the settings'.
    public func faces(_ image: Image, minFace: Double? = nil) -> [Face] {
        let minFace = minFace ?? Double(settings.minFace)
        let img = image.bgr
        let w = Float(img.width), h = Float(img.height)
        // Stage 1: P-Net over the pyramid.
        var scales: [Double] = []
        let m = 12 / minFace
        var side = Double(min(img.width, img.height)) * m, s = m
        while side >= 12 { scales.append(s); s *= Self.pyramidFactor; side *= Self.pyramidFactor }
        // Each level is shrunk from the one before (area averaging of an area average), not from the
        // full image: 3-4x less resizing work for the same pyramid.
        var levels: [Image] = []
        for (k, scale) in scales.enumerated() {
            let sw = Int(Double(img.width) * scale + 1), sh = Int(Double(img.height) * scale + 1)
            levels.append((k == 0 ? img : levels[k - 1]).resized(width: sw, height: sh))
        }
        let pyramid = Pyramid(image: img, levels: levels)
        // The small levels (at most 64 pixels a side) run as one padded batch: for them P-Net's
        // time is mostly per call, not per pixel. The others run alone, padded to multiples of 16.
        let small = levels.indices.filter { max(levels[$0].width, levels[$0].height) <= 64 }
        let groups = levels.indices.filter { !small.contains($0) }.map { [$0] } + (small.isEmpty ? [] : [small])
        var found = [[Candidate]](repeating: [], count: levels.count)
        for group in groups {
            let padW = group.count > 1 ? 64 : Self.bucket(levels[group[0]].width, 16)
            let padH = group.count > 1 ? 64 : Self.bucket(levels[group[0]].height, 16)
            let out = networks.pnet(networks.input(group.map { levels[$0] }, width: padW, height: padH))
            let plane = out.height * out.width
            for (n, k) in group.enumerated() {
                let level = levels[k], scale = scales[k]
                let p = n * plane, o = n * 4 * plane
                var candidates: [Candidate] = []
                // Only windows inside the level (2x + 12 <= side): the rest saw the padding.
                let validW = min(out.width, (level.width - 12) / 2 + 1), validH = min(out.height, (level.height - 12) / 2 + 1)
                for y in 0..<max(validH, 0) {
                    for x in 0..<max(validW, 0) where out.probability[p + y * out.width + x] >= Self.thresholds[0] {
                        let i = y * out.width + x
                        let q1x = Float(floor(Double(2 * x + 1) / scale)), q1y = Float(floor(Double(2 * y + 1) / scale))
                        let q2x = Float(floor(Double(2 * x + 12) / scale)), q2y = Float(floor(Double(2 * y + 12) / scale))
                        candidates.append(Candidate(x1: q1x, y1: q1y, x2: q2x, y2: q2y, score: out.probability[p + i],
                                                    reg: (out.offsets[o + i], out.offsets[o + plane + i], out.offsets[o + 2 * plane + i], out.offsets[o + 3 * plane + i])))
                    }
                }
                found[k] = Self.nms(candidates, 0.5, minimum: false)
            }
        }
        var proposals = found.flatMap { $0 }
        proposals = Self.nms(proposals, 0.7, minimum: false).map { c in
            let bw = c.x2 - c.x1, bh = c.y2 - c.y1
            return Self.square(Candidate(x1: c.x1 + c.reg.0 * bw, y1: c.y1 + c.reg.1 * bh, x2: c.x2 + c.reg.2 * bw, y2: c.y2 + c.reg.3 * bh, score: c.score))
        }.filter(\.isPlausible)
        guard !proposals.isEmpty else { return [] }

        // Stage 2: R-Net on 24x24 crops.
        let r = networks.rnet(networks.input(proposals.map { pyramid.crop($0, 24) }, batch: Self.batchBucket(proposals.count)))
        var refined = Self.scored(proposals, r.probability, r.offsets, above: Self.thresholds[1]).map(\.candidate)
        refined = Self.nms(refined, 0.7, minimum: false).map { Self.square(Self.regress($0)) }.filter(\.isPlausible)
        guard !refined.isEmpty else { return [] }

        // Stage 3: O-Net on 48x48 crops, with landmarks.
        let final = Self.nms(outputStage(pyramid, refined).map(\.candidate), 0.7, minimum: true)
        return final.map { Self.face($0, width: w, height: h) }.sorted { $0.box.centerX < $1.box.centerX }
    }

    /// O-Net on the candidates' 48x48 crops: those it scores as faces, with its refined boxes and
    /// landmarks, and each one's index in `candidates`.
    func outputStage(_ pyramid: Pyramid, _ candidates: [Candidate]) -> [(index: Int, candidate: Candidate)] {
        guard !candidates.isEmpty else { return [] }
        let o = networks.onet(networks.input(candidates.map { pyramid.crop($0, 48) }, batch: Self.batchBucket(candidates.count)))
        return Self.scored(candidates, o.probability, o.offsets, above: Self.thresholds[2]).map { i, c in
            var d = c
            let bw = d.x2 - d.x1 + 1, bh = d.y2 - d.y1 + 1
            d.landmarks = (0..<5).map { k in (bw * o.landmarks[10 * i + k] + d.x1 - 1, bh * o.landmarks[10 * i + 5 + k] + d.y1 - 1) }
            return (i, Self.regress(d))
        }.filter(\.candidate.isPlausible)
    }

    /// A candidate clipped to the image, as a `Face`.
    static func face(_ c: Candidate, width w: Float, height h: Float) -> Face {
        let x1 = max(0, min(c.x1, w - 1)), y1 = max(0, min(c.y1, h - 1))
        let x2 = max(x1 + 1, min(c.x2, w)), y2 = max(y1 + 1, min(c.y2, h))
        // Landmarks 0 and 1 are the eyes, left and right on screen.
        let roll = c.landmarks.count >= 2 ? atan2(Double(c.landmarks[1].1 - c.landmarks[0].1), Double(c.landmarks[1].0 - c.landmarks[0].0)) * 180 / .pi : nil
        return Face(box: FaceBox(x: Int(x1), y: Int(y1), width: Int(x2 - x1), height: Int(y2 - y1), roll: roll), score: c.score, landmarks: c.landmarks)
    }

    /// Video tracking: each face of the previous frame re-checked and re-fitted by O-Net alone on
    /// this frame, all in one batch (a fraction of a millisecond, against a pyramid search per face);
    /// nil where O-Net no longer sees a face there. The crop is the previous box made square, as
    /// the detection's own O-Net input is, so a face that moved a few pixels is found again.
    public func track(_ image: Image, previous: [FaceBox]) -> [FaceBox?] {
        let img = image.bgr
        let candidates = previous.map { b in
            Self.square(Candidate(x1: Float(b.x), y1: Float(b.y), x2: Float(b.x + b.width), y2: Float(b.y + b.height), score: 0))
        }
        var out = [FaceBox?](repeating: nil, count: previous.count)
        for (i, c) in outputStage(Pyramid(image: img, levels: []), candidates) {
            out[i] = Self.face(c, width: Float(img.width), height: Float(img.height)).box
        }
        return out
    }

    /// The image and its shrunk copies (P-Net's pyramid), for cutting R-Net's and O-Net's inputs.
    struct Pyramid {
        let image: Image
        /// The shrunk copies with their scale (copy pixels per image pixel), smallest scale first.
        let levels: [(image: Image, scale: Double)]

        /// `levels`: P-Net's pyramid, largest first; those not smaller than the image are left out.
        init(image: Image, levels: [Image]) {
            self.image = image
            self.levels = levels.map { ($0, Double($0.width) / Double(image.width)) }.filter { $0.1 < 1 }.reversed()
        }

        /// The box's pixels (clipped to the image, as facenet-pytorch's `pad`) resized to side x
        /// side, cut from the smallest level on which the box still spans `side` pixels: the
        /// same area average from up to ~100x fewer source pixels (a 300-pixel box shrunk to 24).
        func crop(_ c: Candidate, _ side: Int) -> Image {
            let x = max(Int(c.x1), 1), y = max(Int(c.y1), 1)
            let ex = min(Int(c.x2), image.width), ey = min(Int(c.y2), image.height)
            guard ex > x - 1, ey > y - 1 else { return Image(width: side, height: side, channels: 3) }
            let w = ex - x + 1, h = ey - y + 1
            if let l = levels.first(where: { Double(min(w, h)) * $0.scale >= Double(side) }) {
                let s = l.scale
                return l.image.resized(x: Int(Double(x - 1) * s), y: Int(Double(y - 1) * s),
                                       regionWidth: max(1, Int((Double(w) * s).rounded())), regionHeight: max(1, Int((Double(h) * s).rounded())),
                                       width: side, height: side)
            }
            return image.resized(x: x - 1, y: y - 1, regionWidth: w, regionHeight: h, width: side, height: side)
        }
    }

    /// The candidates a refinement network scored above `threshold`, with its score and box
    /// offsets, and each one's index in the network's batch.
    static func scored(_ candidates: [Candidate], _ probability: [Float], _ offsets: [Float], above threshold: Float)
        -> [(index: Int, candidate: Candidate)] {
        candidates.enumerated().compactMap { i, c in
            guard probability[i] > threshold else { return nil }
            var d = c
            d.score = probability[i]
            d.reg = (offsets[4 * i], offsets[4 * i + 1], offsets[4 * i + 2], offsets[4 * i + 3])
            return (i, d)
        }
    }

    static func regress(_ c: Candidate) -> Candidate {
        let bw = c.x2 - c.x1 + 1, bh = c.y2 - c.y1 + 1
        var d = c
        d.x1 += c.reg.0 * bw; d.y1 += c.reg.1 * bh; d.x2 += c.reg.2 * bw; d.y2 += c.reg.3 * bh
        return d
    }

    /// The box made square about its centre (side = the longer side).
    static func square(_ c: Candidate) -> Candidate {
        let bw = c.x2 - c.x1, bh = c.y2 - c.y1, l = max(bw, bh)
        var d = c
        d.x1 = c.x1 + bw * 0.5 - l * 0.5
        d.y1 = c.y1 + bh * 0.5 - l * 0.5
        d.x2 = d.x1 + l
        d.y2 = d.y1 + l
        return d
    }

    /// Greedy non-maximum suppression; overlap is intersection over union, or over the smaller box.
    static func nms(_ boxes: [Candidate], _ threshold: Float, minimum: Bool) -> [Candidate] {
        var order = boxes.indices.sorted { boxes[$0].score > boxes[$1].score }
        var keep: [Candidate] = []
        while let i = order.first {
            let a = boxes[i]
            keep.append(a)
            let areaA = (a.x2 - a.x1 + 1) * (a.y2 - a.y1 + 1)
            order = order.dropFirst().filter { j in
                let b = boxes[j]
                let iw = max(0, min(a.x2, b.x2) - max(a.x1, b.x1) + 1), ih = max(0, min(a.y2, b.y2) - max(a.y1, b.y1) + 1)
                let inter = iw * ih, areaB = (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1)
                let o = minimum ? inter / min(areaA, areaB) : inter / (areaA + areaB - inter)
                return o <= threshold
            }
        }
        return keep
    }
}
