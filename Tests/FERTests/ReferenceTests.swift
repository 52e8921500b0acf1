import Foundation
import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

/// The engine against PyTorch (llm.c style): Reference/make_reference.py dumped, in float64, what
/// PyTorch computes for each preset from given weights and inputs; the engine, in float32, must
/// agree on logits, loss, every gradient, the batch-norm running statistics and inference logits.
@Suite("PyTorch reference", .serialized) struct ReferenceTests {
    init() { DNNL.setThreads(2) }

    struct SpecJSON: Decodable { var preset: String; var width: Int; var inputSize: Int; var classes: Int; var fcWidth: Int? }

    /// max |a - b| / max |b|: the error relative to the tensor's scale. `floor` bounds the scale from
    /// below for tensors that are zero in exact arithmetic (a convolution bias followed by batch
    /// norm has gradient 0; float32 leaves ~1e-8 there).
    func relativeError(_ a: [Float], _ b: [Float], floor: Float = 1e-6) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        let scale = max(b.map(abs).max() ?? 0, floor)
        return zip(a, b).map { abs($0 - $1) }.max()! / scale
    }

    @Test(arguments: ["cnn", "resnet", "vgg", "mlp"])
    func matchesPyTorch(_ name: String) throws {
        let path = (Paths.packageRoot as NSString).appendingPathComponent("Tests/FERTests/Reference/\(name).safetensors")
        let ref = try SafeTensors.read(path)
        let s = try JSONDecoder().decode(SpecJSON.self, from: Data(ref.metadata["spec"]!.utf8))
        let spec = ModelSpec(preset: Preset(rawValue: s.preset)!, width: s.width, fcWidth: s.fcWidth ?? 0, inputSize: s.inputSize, classes: s.classes, dropout: 0)
        let net = spec.build(seed: 1)
        net.skipInputGradient = false
        for p in net.parameters + net.buffers {
            let t = try #require(ref["param/" + p.name], "reference lacks \(p.name)")
            #expect(t.shape == p.value.shape, "\(p.name): \(t.shape) vs \(p.value.shape)")
            for i in 0..<p.count { p.values[i] = t.values[i] }
            p.changed()
        }
        let x = ref["input"]!
        let labels = ref["labels"]!.values.map { Int($0) }
        let logits = net.forward(Tensor(shape: x.shape, values: x.values), mode: .training)
        #expect(relativeError(logits.plainValues(), ref["logits"]!.values) < 1e-4, "logits")
        let result = SoftmaxCrossEntropy()(logits, .labels(labels))
        #expect(abs(result.loss - ref["loss"]!.values[0]) < 1e-5)
        let dx = net.backward(result.gradient).plainValues()
        #expect(relativeError(dx, ref["grad/input"]!.values) < 1e-3, "input gradient")
        let gradScale = net.parameters.compactMap { ref["grad/" + $0.name]?.values.map(abs).max() }.max() ?? 1
        for p in net.parameters {
            let g = try #require(ref["grad/" + p.name])
            #expect(relativeError(Array(p.grads), g.values, floor: 1e-2 * gradScale) < 1e-3, "gradient of \(p.name)")
        }
        for b in net.buffers {
            let r = try #require(ref["running/" + b.name])
            #expect(relativeError(Array(b.values), r.values) < 1e-4, "\(b.name)")
        }
        let eval = net.forward(Tensor(shape: x.shape, values: x.values), mode: .inference).plainValues()
        #expect(relativeError(eval, ref["eval_logits"]!.values) < 1e-4, "inference logits")
    }
}

@Suite("Optimizers against PyTorch") struct OptimizerReferenceTests {
    @Test(arguments: ["sgd", "sgd_nesterov", "adam", "adamw"])
    func matchesTorchOptim(_ name: String) throws {
        let ref = try SafeTensors.read((Paths.packageRoot as NSString).appendingPathComponent("Tests/FERTests/Reference/optimizers.safetensors"))
        let w0 = ref["w0"]!
        let p = Parameter("w", shape: w0.shape, decays: true, values: w0.values)
        var c = OptimizerConfig()
        switch name {
        case "sgd": c.kind = .sgd; c.learningRate = 0.1; c.momentum = 0.9; c.weightDecay = 0.01
        case "sgd_nesterov": c.kind = .sgd; c.learningRate = 0.1; c.momentum = 0.9; c.nesterov = true; c.weightDecay = 0.01
        case "adam": c.kind = .adam; c.learningRate = 0.01; c.weightDecay = 0.01
        default: c.kind = .adamw; c.learningRate = 0.01; c.weightDecay = 0.1
        }
        let opt = c.make([p])
        for i in 0..<5 {
            let g = ref["grad\(i)"]!.values
            for j in 0..<g.count { p.grads[j] = g[j] }
            opt.step()
            let expected = ref["\(name)/step\(i)"]!.values
            let err = zip(Array(p.values), expected).map { abs($0 - $1) }.max()!
            #expect(err < 1e-5, "\(name) step \(i): max error \(err)")
        }
    }
}

/// The optimisers update in slices over the cores, 16 lanes at a time: on parameters whose sizes end
/// a slice and a lane group early (1, 17, 32,768 + 5), every bit of weights and moments must equal
/// the textbook scalar loop's.
@Suite("Optimizers: sliced and vectorised, the scalar loop's bits") struct OptimizerSlicingTests {
    @Test(arguments: ["sgd", "sgd_nesterov", "adam", "adamw"])
    func sameBitsAsTheScalarLoop(_ name: String) throws {
        var rng = SplitMix64(seed: 11)
        let sizes = [1, 17, (1 << 15) + 5]
        let params = sizes.enumerated().map { i, n in Parameter("p\(i)", shape: [n], decays: i != 1, values: (0..<n).map { _ in rng.unit() - 0.5 }) }
        var c = OptimizerConfig()
        c.weightDecay = 0.01
        switch name {
        case "sgd": c.kind = .sgd; c.learningRate = 0.1; c.momentum = 0.9
        case "sgd_nesterov": c.kind = .sgd; c.learningRate = 0.1; c.momentum = 0.9; c.nesterov = true
        case "adam": c.kind = .adam; c.learningRate = 0.01
        default: c.kind = .adamw; c.learningRate = 0.01
        }
        let opt = c.make(params)
        var w = params.map { Array($0.values) }, m = sizes.map { [Float](repeating: 0, count: $0) }, v = m
        for step in 1...3 {
            for p in params { for j in 0..<p.count { p.grads[j] = rng.unit() - 0.5 } }
            opt.step()
            // The scalar loops, as PyTorch writes them.
            let c1 = 1 - pow(c.beta1, Float(step)), c2 = 1 - pow(c.beta2, Float(step)), stepSize = c.learningRate / c1, c2root = c2.squareRoot()
            for (k, p) in params.enumerated() {
                let wd = p.decays ? c.weightDecay : 0
                for j in 0..<p.count {
                    let g = p.grads[j]
                    if c.kind == .sgd {
                        let grad = g + wd * w[k][j]
                        m[k][j] = c.momentum * m[k][j] + grad
                        w[k][j] -= c.learningRate * (c.nesterov ? grad + c.momentum * m[k][j] : m[k][j])
                    } else {
                        let l2 = c.kind == .adamw ? 0 : wd, shrink = c.kind == .adamw ? 1 - c.learningRate * wd : 1
                        let grad = g + l2 * w[k][j]
                        m[k][j] = c.beta1 * m[k][j] + (1 - c.beta1) * grad
                        v[k][j] = c.beta2 * v[k][j] + (1 - c.beta2) * grad * grad
                        w[k][j] = w[k][j] * shrink - stepSize * m[k][j] / (v[k][j].squareRoot() / c2root + c.epsilon)
                    }
                }
                #expect(Array(p.values) == w[k], "\(name), parameter of \(p.count), step \(step)")
            }
        }
        let state = opt.state
        for (k, p) in params.enumerated() {
            if c.kind == .sgd { #expect(state["velocity." + p.name] == m[k]) } else { #expect(state["m." + p.name] == m[k] && state["v." + p.name] == v[k]) }
        }
    }
}

/// MTCNN's networks on this engine against the PyTorch originals (tools/convert_mtcnn.py).
@Suite("MTCNN networks against PyTorch") struct MTCNNReferenceTests {
    @Test func networksMatch() throws {
        let root = Paths.packageRoot as NSString
        let nets = try MTCNNNetworks(weights: BundledTestModels.mtcnn)
        let ref = try SafeTensors.read(root.appendingPathComponent("Tests/FERTests/Reference/mtcnn_nets.safetensors"))
        func input(_ n: String) -> Tensor { let t = ref[n + "/input"]!; return Tensor(shape: t.shape, values: t.values) }
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count)")
            let err = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(err < 1e-4 * max(1, b.map(abs).max() ?? 1), "\(what): max error \(err)")
        }
        let p = nets.pnet(input("pnet"))
        close(p.offsets, ref["pnet/output0"]!.values, "P-Net offsets")
        // PyTorch's output1 is the [N, 2, h, w] softmax; channel 1 is the face probability.
        let probs = ref["pnet/output1"]!
        let plane = probs.shape[2] * probs.shape[3]
        close(p.probability, (0..<probs.shape[0]).flatMap { i in Array(probs.values[(2 * i + 1) * plane ..< (2 * i + 2) * plane]) }, "P-Net probability")
        let r = nets.rnet(input("rnet"))
        close(r.offsets, ref["rnet/output0"]!.values, "R-Net offsets")
        close(r.probability, stride(from: 1, to: ref["rnet/output1"]!.values.count, by: 2).map { ref["rnet/output1"]!.values[$0] }, "R-Net probability")
        let o = nets.onet(input("onet"))
        close(o.offsets, ref["onet/output0"]!.values, "O-Net offsets")
        close(o.landmarks, ref["onet/output1"]!.values, "O-Net landmarks")
        close(o.probability, stride(from: 1, to: ref["onet/output2"]!.values.count, by: 2).map { ref["onet/output2"]!.values[$0] }, "O-Net probability")
    }
}
