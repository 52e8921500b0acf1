import Foundation
import FEREngine
import FERIO
import FERData
import FERModels
import FEREvaluation

/// MTCNN's three networks (Zhang et al. 2016), on this engine's layers, with the weights of the
/// facenet-pytorch package converted by tools/convert_mtcnn.py (models/mtcnn/mtcnn.safetensors).
/// Inputs are RGB scaled as (x - 127.5) / 128.
///
///   P-Net: any size [N, 3, H, W] -> box offsets [N, 4, h, w], face probability map [N, 2, h, w]
///   R-Net: 24x24 crops [N, 3, 24, 24] -> offsets [N, 4], probabilities [N, 2]
///   O-Net: 48x48 crops [N, 3, 48, 48] -> offsets [N, 4], landmarks [N, 10], probabilities [N, 2]
public final class MTCNNNetworks {
    let pnetTrunk, rnetTrunk, onetTrunk: Sequential
    let pnetBox, pnetScore: Conv2D
    let rnetBox, rnetScore: Dense
    let onetBox, onetLandmarks, onetScore: Dense

    public init(weights path: String) throws {
        var rng = SplitMix64(seed: 0)  // overwritten by the file
        func conv(_ i: Int, _ o: Int, _ k: Int, _ n: String) -> Conv2D { Conv2D(i, o, kernel: k, padding: 0, rng: &rng, name: n) }
        func dense(_ i: Int, _ o: Int, _ n: String) -> Dense { Dense(i, o, rng: &rng, name: n) }
        pnetTrunk = Sequential([conv(3, 10, 3, "pnet.conv1"), PReLU(10, name: "pnet.prelu1"), Pool2D.maxPool(2, stride: 2, ceilMode: true),
                                conv(10, 16, 3, "pnet.conv2"), PReLU(16, name: "pnet.prelu2"),
                                conv(16, 32, 3, "pnet.conv3"), PReLU(32, name: "pnet.prelu3")])
        pnetScore = conv(32, 2, 1, "pnet.conv4_1")
        pnetBox = conv(32, 4, 1, "pnet.conv4_2")
        rnetTrunk = Sequential([conv(3, 28, 3, "rnet.conv1"), PReLU(28, name: "rnet.prelu1"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                conv(28, 48, 3, "rnet.conv2"), PReLU(48, name: "rnet.prelu2"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                conv(48, 64, 2, "rnet.conv3"), PReLU(64, name: "rnet.prelu3"),
                                dense(576, 128, "rnet.dense4"), PReLU(128, name: "rnet.prelu4")])
        rnetScore = dense(128, 2, "rnet.dense5_1")
        rnetBox = dense(128, 4, "rnet.dense5_2")
        onetTrunk = Sequential([conv(3, 32, 3, "onet.conv1"), PReLU(32, name: "onet.prelu1"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                conv(32, 64, 3, "onet.conv2"), PReLU(64, name: "onet.prelu2"), Pool2D.maxPool(3, stride: 2, ceilMode: true),
                                conv(64, 64, 3, "onet.conv3"), PReLU(64, name: "onet.prelu3"), Pool2D.maxPool(2, stride: 2, ceilMode: true),
                                conv(64, 128, 2, "onet.conv4"), PReLU(128, name: "onet.prelu4"),
                                dense(1152, 256, "onet.dense5"), PReLU(256, name: "onet.prelu5")])
        onetScore = dense(256, 2, "onet.dense6_1")
        onetBox = dense(256, 4, "onet.dense6_2")
        onetLandmarks = dense(256, 10, "onet.dense6_3")

        let st = try SafeTensors.read(path)
        let layers: [Layer] = [pnetTrunk, pnetScore, pnetBox, rnetTrunk, rnetScore, rnetBox, onetTrunk, onetScore, onetBox, onetLandmarks]
        for p in layers.flatMap(\.parameters) {
            guard let t = st[p.name] else { throw CheckpointError.missingTensor(path, p.name) }
            guard t.shape == p.value.shape else { throw CheckpointError.shapeMismatch(path, p.name, expected: p.value.shape, found: t.shape) }
            for i in 0..<p.count { p.values[i] = t.values[i] }
            p.changed()
        }
    }

    /// Softmax over the channel axis of [N, 2, h, w] (or [N, 2]) scores: the face probability.
    static func faceProbability(_ scores: [Float], n: Int, plane: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * plane)
        for i in 0..<n {
            for j in 0..<plane {
                let a = scores[(i * 2) * plane + j], b = scores[(i * 2 + 1) * plane + j]
                out[i * plane + j] = 1 / (1 + exp(a - b))
            }
        }
        return out
    }

    /// P-Net on one scaled image: offsets [4, h, w] row-major and face probabilities [h, w].
    public func pnet(_ x: Tensor) -> (offsets: [Float], probability: [Float], height: Int, width: Int) {
        let f = pnetTrunk.forward(x, mode: .inference)
        let s = pnetScore.forward(f, mode: .inference), b = pnetBox.forward(f, mode: .inference)
        let shape = s.shape
        return (b.plainValues(), Self.faceProbability(s.plainValues(), n: shape[0], plane: shape[2] * shape[3]), shape[2], shape[3])
    }

    /// R-Net on 24x24 crops: offsets [N, 4] and face probabilities [N].
    public func rnet(_ x: Tensor) -> (offsets: [Float], probability: [Float]) {
        let f = rnetTrunk.forward(x, mode: .inference)
        return (rnetBox.forward(f, mode: .inference).plainValues(),
                Self.faceProbability(rnetScore.forward(f, mode: .inference).plainValues(), n: x.shape[0], plane: 1))
    }

    /// O-Net on 48x48 crops: offsets [N, 4], landmarks [N, 10] (5 x, then 5 y, relative to the box)
    /// and face probabilities [N].
    public func onet(_ x: Tensor) -> (offsets: [Float], landmarks: [Float], probability: [Float]) {
        let f = onetTrunk.forward(x, mode: .inference)
        return (onetBox.forward(f, mode: .inference).plainValues(), onetLandmarks.forward(f, mode: .inference).plainValues(),
                Self.faceProbability(onetScore.forward(f, mode: .inference).plainValues(), n: x.shape[0], plane: 1))
    }
}
