import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FERIO
@testable import FERModels

/// Issue 36 item 5: why the model said it. Grad-CAM on the engine's own backward pass.
@Suite("Grad-CAM explanations") struct ExplainTests {
    /// Writes `values` into a parameter and marks it changed.
    static func set(_ p: Parameter, _ values: [Float]) {
        for (i, v) in values.enumerated() { p.values[i] = v }
        p.changed()
    }

    /// Passes its input through and counts its passes: put in a head, it counts backward passes.
    final class Counting: Layer {
        var forwards = 0, backwards = 0
        func forward(_ x: Tensor, mode: Mode) -> Tensor { forwards += 1; return x }
        func backward(_ dy: Tensor) -> Tensor { backwards += 1; return dy }
        func outputShape(_ input: [Int]) -> [Int] { input }
        var summary: String { "Counting" }
    }

    /// A network whose evidence for each class sits in one region: channel 0 is the image (bright
    /// top half), channel 1 its negative (bright bottom half), and class k reads channel k alone.
    /// So class 0's map must light the top half and class 1's the bottom half.
    static func twoRegionNetwork() -> (Sequential, Counting) {
        var rng = SplitMix64(seed: 1)
        let conv = Conv2D(1, 2, kernel: 1, padding: 0, rng: &rng, name: "conv")
        Self.set(conv.parameters[0], [1, -1])  // x and -x
        Self.set(conv.parameters[1], [0, 1])  // + 0 and + 1
        let dense = Dense(2, 2, rng: &rng, name: "fc")
        Self.set(dense.parameters[0], [1, 0, 0, 1])
        Self.set(dense.parameters[1], [0, 0])
        let counting = Counting()
        return (Sequential([conv, BatchNorm(2, fusedReLU: true, name: "bn"), counting, Pool2D.globalAverage(), Dropout(0.5), dense]), counting)
    }

    @Test func theMapLightsTheRegionThatHoldsTheClasssEvidence() throws {
        let (net, counting) = Self.twoRegionNetwork()
        #expect(GradCAM.headStart(net) == 2)
        let side = 8
        let image = (0..<(side * side)).map { $0 / side < side / 2 ? Float(1) : 0 }
        let x = Tensor(shape: [1, 1, side, side], values: image)
        func halves(_ m: GradCAM.Map) -> (top: Float, bottom: Float) {
            let half = m.values.count / 2
            return (m.values[..<half].reduce(0, +) / Float(half), m.values[half...].reduce(0, +) / Float(half))
        }
        let top = try #require(GradCAM.map(net, input: x, classIndex: 0))
        #expect(top.height == side && top.width == side && top.classIndex == 0)
        let t = halves(top)
        #expect(t.top > 0.99 && t.bottom < 0.01, "\(t)")
        let bottom = try #require(GradCAM.map(net, input: x, classIndex: 1))
        let b = halves(bottom)
        #expect(b.bottom > 0.99 && b.top < 0.01, "\(b)")
        // One forward and one backward pass through the head per map, and no gradient left behind.
        #expect(counting.forwards == 2 && counting.backwards == 2)
        #expect(net.parameters.allSatisfy { $0.grads.allSatisfy { $0 == 0 } })
    }

    @Test func aModelWithoutConvolutionsHasNoMap() {
        let mlp = Classifier(spec: ModelSpec(preset: .mlp, width: 16))
        #expect(mlp.explain(face: [UInt8](repeating: 128, count: 48 * 48)) == nil)
    }

    /// A bundled model explains a real face: the map covers the centre crop the network saw, its top
    /// class is the one `fer predict` reports, and the command writes one image per face.
    @Test func predictExplainWritesAHeatMapPerFace() throws {
        let dir = Paths.temporaryDirectory("explain")
        let photo = (Paths.packageRoot as NSString).appendingPathComponent("samples/astronaut.png")
        let r = try run(Paths.ferBinary, ["predict", photo, "--json", "--explain", dir + "/why", "--precision", "fp32"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        let faces = try #require(rows.first?["faces"] as? [[String: Any]])
        let written = try FileManager.default.contentsOfDirectory(atPath: dir + "/why").sorted()
        #expect(written == (1...faces.count).map { "astronaut.face\($0).explain.png" }, "\(written)")
        let image = try Image.read(dir + "/why/astronaut.face1.explain.png", channels: 3)
        #expect(image.width == 192 && image.height == 220)
        // The library's map of a face: in [0, 1], over the stored 48x48 face.
        let classifier = try Checkpoint.load(BundledTestModels.model("default")).0
        let face = [UInt8](repeating: 0, count: 48 * 48)
        let e = try #require(classifier.explain(face: face))
        #expect(e.heat.count == 48 * 48 && e.heat.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Outside the 40x40 centre crop the network never looked: no heat there.
        #expect((0..<48).allSatisfy { e.heat[$0] == 0 && e.heat[47 * 48 + $0] == 0 })
    }
}
