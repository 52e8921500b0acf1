import Foundation
import FEREngine
import FERIO
import FERModels

/// MTCNN's three networks (Zhang et al. 2016), on this engine's layers, with the weights of the
/// facenet-pytorch package converted by tools/convert_mtcnn.py (models/mtcnn/mtcnn.safetensors).
/// Inputs are RGB scaled as (x - 127.5) / 128.
///
///   P-Net: any size [N, 3, H, W] -> box offsets [N, 4, h, w], face probability map [N, 2, h, w]
///   R-Net: 24x24 crops [N, 3, 24, 24] -> offsets [N, 4], probabilities [N, 2]
///   O-Net: 48x48 crops [N, 3, 48, 48] -> offsets [N, 4], landmarks [N, 10], probabilities [N, 2]
///
/// Each network runs as an `InferenceNetwork` (fp32, bf16 or int8) whose last layer is its heads
/// merged into one (P-Net: 2 scores + 4 offsets; R-Net the same; O-Net: + 10 landmarks): one
/// primitive reads the trunk's features once instead of once per head.
public final class MTCNNNetworks {
    public let pnetNetwork, rnetNetwork, onetNetwork: InferenceNetwork
    public let precision: Precision
    /// Whether the networks' first layers read channels-last input (int8 convolutions do; fp32 and
    /// bf16 ones read planes), so that the input is written in that order and needs no transposition.
    var takesChannelsLast: Bool { precision == .int8 }

    /// The tensors that hold each network's int8 activation ranges in the weights file.
    public static let rangesTensors = (pnet: "int8.ranges.pnet", rnet: "int8.ranges.rnet", onet: "int8.ranges.onet")

    let weightsPath: String

    public init(weights path: String, precision: Precision = .fp32) throws {
        var rng = SplitMix64(seed: 0)  // overwritten by the file
        func conv(_ i: Int, _ o: Int, _ k: Int, _ n: String) -> Conv2D { Conv2D(i, o, kernel: k, padding: 0, rng: &rng, name: n) }
        func dense(_ i: Int, _ o: Int, _ n: String) -> Dense { Dense(i, o, rng: &rng, name: n) }
        let pnetTrunk = Sequential([conv(3, 10, 3, "pnet.conv1"), PReLU(10, name: "pnet.prelu1"), Pool2D.maxPool(2, stride: 2, ceilMode: true),
                                    conv(10, 16, 3, "pnet.conv2"), PReLU(16, name: "pnet.prelu2"),
                                    conv(16, 32, 3, "pnet.conv3"), PReLU(32, name: "pnet.prelu3")])
        let pnetHeads = [conv(32, 2, 1, "pnet.conv4_1"), conv(32, 4, 1, "pnet.conv4_2")]
        let rnetTrunk = Sequential([conv(3, 28, 3, "rnet.conv1"), PReLU(28, name: "rnet.prelu1"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                    conv(28, 48, 3, "rnet.conv2"), PReLU(48, name: "rnet.prelu2"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                    conv(48, 64, 2, "rnet.conv3"), PReLU(64, name: "rnet.prelu3"),
                                    dense(576, 128, "rnet.dense4"), PReLU(128, name: "rnet.prelu4")])
        let rnetHeads = [dense(128, 2, "rnet.dense5_1"), dense(128, 4, "rnet.dense5_2")]
        let onetTrunk = Sequential([conv(3, 32, 3, "onet.conv1"), PReLU(32, name: "onet.prelu1"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                    conv(32, 64, 3, "onet.conv2"), PReLU(64, name: "onet.prelu2"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                    conv(64, 64, 3, "onet.conv3"), PReLU(64, name: "onet.prelu3"), Pool2D.maxPool(2, stride: 2, ceilMode: true),
                                    conv(64, 128, 2, "onet.conv4"), PReLU(128, name: "onet.prelu4"),
                                    dense(1152, 256, "onet.dense5"), PReLU(256, name: "onet.prelu5")])
        let onetHeads = [dense(256, 2, "onet.dense6_1"), dense(256, 4, "onet.dense6_2"), dense(256, 10, "onet.dense6_3")]

        let st = try SafeTensors.read(path)
        let layers: [Layer] = [pnetTrunk, rnetTrunk, onetTrunk] + pnetHeads + rnetHeads + onetHeads
        for p in layers.flatMap(\.parameters) {
            guard let t = st[p.name] else { throw CheckpointError.missingTensor(path, p.name) }
            guard t.shape == p.value.shape else { throw CheckpointError.shapeMismatch(path, p.name, expected: p.value.shape, found: t.shape) }
            for i in 0..<p.count { p.values[i] = t.values[i] }
            p.changed()
        }
        weightsPath = path

        var ranges: (pnet: [Float]?, rnet: [Float]?, onet: [Float]?) = (nil, nil, nil)
        if precision == .int8 {
            let names = Self.rangesTensors
            guard let p = st[names.pnet]?.values, let r = st[names.rnet]?.values, let o = st[names.onet]?.values else {
                throw InferenceError.notCalibrated
            }
            ranges = (p, r, o)
        }
        self.precision = precision
        pnetNetwork = try InferenceNetwork(Sequential([pnetTrunk, Self.merged(pnetHeads, &rng)]), inputShape: [1, 3, 12, 12],
                                           precision: precision, ranges: ranges.pnet, signedInput: true)
        rnetNetwork = try InferenceNetwork(Sequential([rnetTrunk, Self.merged(rnetHeads, &rng)]), inputShape: [1, 3, 24, 24],
                                           precision: precision, ranges: ranges.rnet, signedInput: true)
        onetNetwork = try InferenceNetwork(Sequential([onetTrunk, Self.merged(onetHeads, &rng)]), inputShape: [1, 3, 48, 48],
                                           precision: precision, ranges: ranges.onet, signedInput: true)
    }

    /// Whether the weights file at `path` carries int8 ranges for all three networks (its header
    /// alone is read: the weights are read once, by `init`).
    public static func hasInt8Ranges(_ path: String) -> Bool {
        guard let names = try? SafeTensors.names(path) else { return false }
        return names.isSuperset(of: [rangesTensors.pnet, rangesTensors.rnet, rangesTensors.onet])
    }

    /// Heads that read the same features as one layer: their outputs stacked in order.
    static func merged(_ heads: [Conv2D], _ rng: inout SplitMix64) -> Conv2D {
        let c = Conv2D(heads[0].inChannels, heads.map(\.outChannels).reduce(0, +), kernel: heads[0].kernel, padding: 0, rng: &rng, name: "heads")
        copyStacked(heads.map { ($0.weight, $0.bias) }, into: (c.weight, c.bias))
        return c
    }

    static func merged(_ heads: [Dense], _ rng: inout SplitMix64) -> Dense {
        let d = Dense(heads[0].inFeatures, heads.map(\.outFeatures).reduce(0, +), rng: &rng, name: "heads")
        copyStacked(heads.map { ($0.weight, $0.bias) }, into: (d.weight, d.bias))
        return d
    }

    /// Weights [out, ...] and biases [out] stacked along the output axis.
    private static func copyStacked(_ parts: [(Parameter, Parameter)], into target: (Parameter, Parameter)) {
        var w = 0, b = 0
        for (weight, bias) in parts {
            for i in 0..<weight.count { target.0.values[w + i] = weight.values[i] }
            for i in 0..<bias.count { target.1.values[b + i] = bias.values[i] }
            w += weight.count
            b += bias.count
        }
        target.0.changed()
        target.1.changed()
    }

    /// While set (on an fp32 instance), every call also records the int8 activation ranges of the
    /// network it runs: what `fer calibrate int8 --mtcnn` measures and stores.
    public var recordedRanges: (pnet: [Float], rnet: [Float], onet: [Float])?

    private func record(_ network: InferenceNetwork, _ x: Tensor, _ keyPath: WritableKeyPath<(pnet: [Float], rnet: [Float], onet: [Float]), [Float]>) {
        guard var r = recordedRanges else { return }
        let new = network.calibrationRanges([x])
        r[keyPath: keyPath] = r[keyPath: keyPath].isEmpty ? new : zip(r[keyPath: keyPath], new).map { max($0, $1) }
        recordedRanges = r
    }

    /// The weights file this instance was loaded from, with `ranges` (the recorded ones) in place
    /// of any it had, written atomically to `path`.
    public func save(_ path: String, ranges: (pnet: [Float], rnet: [Float], onet: [Float])) throws {
        var st = try SafeTensors.read(weightsPath)
        let names = Self.rangesTensors
        st.tensors.removeAll { [names.pnet, names.rnet, names.onet].contains($0.name) }
        st.add(names.pnet, shape: [ranges.pnet.count], values: ranges.pnet)
        st.add(names.rnet, shape: [ranges.rnet.count], values: ranges.rnet)
        st.add(names.onet, shape: [ranges.onet.count], values: ranges.onet)
        try st.write(path)
    }

    /// The face probability of each row of an [rows, width] output whose first two columns are
    /// the no-face and face scores (a softmax over the two): R-Net's and O-Net's rows, and P-Net's
    /// cells read channels-last.
    static func faceProbability(_ v: [Float], width: Int) -> [Float] {
        stride(from: 0, to: v.count, by: width).map { 1 / (1 + exp(v[$0] - v[$0 + 1])) }
    }

    /// `images` as the networks' input: channels-last where their first layers read that layout.
    func input(_ images: [Image], batch: Int? = nil, width: Int? = nil, height: Int? = nil) -> Tensor {
        MTCNNDetector.input(images, batch: batch, width: width, height: height, channelsLast: takesChannelsLast)
    }

    /// P-Net on one scaled image: offsets [4, h, w] row-major and face probabilities [h, w].
    public func pnet(_ x: Tensor) -> (offsets: [Float], probability: [Float], height: Int, width: Int) {
        record(pnetNetwork, x, \.pnet)
        let y = pnetNetwork.forward(x, plain: false)  // [N, 6, h, w]: 2 scores, 4 offsets
        let n = y.shape[0], h = y.shape[2], w = y.shape[3], plane = h * w
        let v = y.channelsLastValues()  // [N, h, w, 6]
        var offsets = [Float](repeating: 0, count: n * 4 * plane)
        v.withUnsafeBufferPointer { v in
            for i in 0..<n {
                for j in 0..<plane {
                    for k in 0..<4 { offsets[(i * 4 + k) * plane + j] = v[(i * plane + j) * 6 + 2 + k] }
                }
            }
        }
        return (offsets, Self.faceProbability(v, width: 6), h, w)
    }

    /// Columns [from, to) of each row of an [N, width] matrix.
    static func columns(_ v: [Float], width: Int, _ range: Range<Int>) -> [Float] {
        stride(from: 0, to: v.count, by: width).flatMap { v[($0 + range.lowerBound)..<($0 + range.upperBound)] }
    }

    /// R-Net on 24x24 crops: offsets [N, 4] and face probabilities [N].
    public func rnet(_ x: Tensor) -> (offsets: [Float], probability: [Float]) {
        record(rnetNetwork, x, \.rnet)
        let v = rnetNetwork.forward(x).plainValues()  // [N, 6]
        return (Self.columns(v, width: 6, 2..<6), Self.faceProbability(v, width: 6))
    }

    /// O-Net on 48x48 crops: offsets [N, 4], landmarks [N, 10] (5 x, then 5 y, relative to the box)
    /// and face probabilities [N].
    public func onet(_ x: Tensor) -> (offsets: [Float], landmarks: [Float], probability: [Float]) {
        record(onetNetwork, x, \.onet)
        let v = onetNetwork.forward(x).plainValues()  // [N, 16]
        return (Self.columns(v, width: 16, 2..<6), Self.columns(v, width: 16, 6..<16),
                Self.faceProbability(v, width: 16))
    }
}

extension MTCNNNetworks {
    /// The arithmetic `choice` runs MTCNN in here; `auto` times each candidate on a 640x480 frame.
    public static func resolvePrecision(_ choice: PrecisionChoice, weights: String, settings: DetectorSettings = DetectorSettings(),
                                        cacheFile: String? = AutoPrecision.defaultCacheFile) throws -> (precision: Precision, decision: AutoPrecision.Decision?) {
        // int8 only with VNNI: without it the weights keep 7 bits (`WeightedOp.weightLevels`), and
        // MTCNN then misses faces (web-photos/val, AVX2 EPYC: 13 of 792 photos without a face, 4 in fp32).
        let work = AutoPrecision.Work.inference("mtcnn 640x480, \(DNNL.threads) threads", hasInt8Ranges: hasInt8Ranges(weights), int8Kernels: CPUFeatures.vnni)
        var rng = SplitMix64(seed: 3)
        let frame = Image(width: 640, height: 480, channels: 3, pixels: (0..<(640 * 480 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) })
        return try AutoPrecision.resolve(choice, for: work, option: "--detector-precision", cacheFile: cacheFile) { p in
            var s = settings
            s.precision = p
            let detector = try MTCNNDetector(weights: weights, settings: s)
            return AutoPrecision.time(warmup: 1, steps: 3) { _ = detector.detect(frame) }
        }
    }
}
