import Testing
@testable import FERData
@testable import FEREngine
@testable import FEREvaluation
@testable import FERIO
@testable import FERModels
@testable import FEROptimizers
@testable import FERTraining
@testable import FERVision

/// Finite-difference checks: for f(x) = sum(layer(x) * r) with a fixed random r, the gradients that
/// `backward` returns must match (f(x + h) - f(x - h)) / 2h, for inputs and for every parameter.
struct GradientCheck {
    var rng = SplitMix64(seed: 42)

    func f(_ layer: Layer, _ x: Tensor, _ r: [Float], reset: () -> Void) -> Double {
        reset()
        let y = layer.forward(x, mode: .training).plainValues()
        return zip(y, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Returns the worst relative error over `samples` coordinates of the input and of each parameter.
    mutating func check(_ layer: Layer, inputShape: [Int], samples: Int = 12, h: Float = 1e-2,
                        reset: () -> Void = {}) -> Double {
        errors(layer, inputShape: inputShape, samples: samples, h: h, reset: reset).max() ?? 0
    }

    /// For networks with ReLU and max-pool kinks: a float32 perturbation of an early weight moves
    /// hundreds of pre-activations, and one that crosses a kink spoils that coordinate's finite
    /// difference. So a composite passes when nearly all sampled coordinates agree.
    mutating func fractionWithin(_ tolerance: Double, _ layer: Layer, inputShape: [Int], samples: Int = 12, h: Float = 1e-3) -> Double {
        let e = errors(layer, inputShape: inputShape, samples: samples, h: h, reset: {})
        return Double(e.filter { $0 < tolerance }.count) / Double(e.count)
    }

    /// Relative errors over `samples` coordinates of the input and of each parameter.
    mutating func errors(_ layer: Layer, inputShape: [Int], samples: Int, h: Float, reset: () -> Void) -> [Double] {
        let xs = (0..<inputShape.reduce(1, *)).map { _ in rng.uniform(-1, 1) }
        let x = Tensor(shape: inputShape, values: xs)
        reset()
        let y = layer.forward(x, mode: .training)
        let r = (0..<y.count).map { _ in rng.uniform(-1, 1) }
        let dx = layer.backward(Tensor(shape: y.shape, values: r)).plainValues()
        var errors: [Double] = []
        func compare(_ analytic: Float, _ numeric: Double) {
            errors.append(abs(Double(analytic) - numeric) / max(1.0, abs(numeric), abs(Double(analytic))))
        }
        // Input gradient.
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(xs.count))
            var plus = xs, minus = xs
            plus[i] += h
            minus[i] -= h
            let num = (f(layer, Tensor(shape: inputShape, values: plus), r, reset: reset)
                - f(layer, Tensor(shape: inputShape, values: minus), r, reset: reset)) / Double(2 * h)
            compare(dx[i], num)
        }
        // Parameter gradients (copied now: the forwards below overwrite nothing, but be explicit).
        for p in layer.parameters {
            let g = Array(p.grads)
            for _ in 0..<samples {
                let i = Int(rng.next() % UInt64(p.count))
                let old = p.values[i]
                p.values[i] = old + h; p.changed()
                let fp = f(layer, x, r, reset: reset)
                p.values[i] = old - h; p.changed()
                let fm = f(layer, x, r, reset: reset)
                p.values[i] = old; p.changed()
                compare(g[i], (fp - fm) / Double(2 * h))
            }
        }
        return errors
    }
}

@Suite("Finite-difference gradients", .serialized) struct GradientCheckTests {
    init() { DNNL.setThreads(2) }

    @Test func dense2D() {
        var rng = SplitMix64(seed: 1), gc = GradientCheck()
        #expect(gc.check(Dense(10, 5, rng: &rng), inputShape: [4, 10]) < 2e-3)
    }

    @Test func denseOn4DInput() {
        var rng = SplitMix64(seed: 2), gc = GradientCheck()
        #expect(gc.check(Dense(3 * 4 * 4, 6, rng: &rng), inputShape: [2, 3, 4, 4]) < 2e-3)
    }

    @Test func conv2D() {
        var rng = SplitMix64(seed: 3), gc = GradientCheck()
        #expect(gc.check(Conv2D(3, 16, kernel: 3, rng: &rng), inputShape: [2, 3, 7, 7]) < 2e-3)
    }

    @Test func conv2DEightInputChannels() {
        // oneDNN picks different source layouts for forward and backward-weights here (abcd, aBcd8b).
        var rng = SplitMix64(seed: 6), gc = GradientCheck()
        #expect(gc.check(Conv2D(8, 16, kernel: 3, rng: &rng), inputShape: [2, 8, 6, 6]) < 2e-3)
    }

    @Test func conv2DStridedOneByOne() {
        var rng = SplitMix64(seed: 4), gc = GradientCheck()
        #expect(gc.check(Conv2D(16, 32, kernel: 1, stride: 2, padding: 0, rng: &rng), inputShape: [2, 16, 6, 6]) < 2e-3)
    }

    @Test func batchNormTraining() {
        var gc = GradientCheck()
        #expect(gc.check(BatchNorm(16), inputShape: [4, 16, 3, 3], h: 1e-2) < 5e-3)
    }

    @Test func batchNormWithFusedReLU() {
        var gc = GradientCheck()
        #expect(gc.check(BatchNorm(16, fusedReLU: true), inputShape: [4, 16, 3, 3], h: 1e-3) < 5e-3)
    }

    @Test func batchNormFeatures() {
        var gc = GradientCheck()
        #expect(gc.check(BatchNorm(5), inputShape: [6, 5], h: 1e-2) < 5e-3)
    }

    @Test func relu() {
        var gc = GradientCheck()
        #expect(gc.check(ReLU(), inputShape: [3, 16, 4, 4], h: 1e-3) < 2e-3)
    }

    @Test func preluOnImages() {
        let l = PReLU(16, initial: 0.2)
        for c in 0..<16 { l.weight.values[c] = 0.1 + 0.02 * Float(c) }
        l.weight.changed()
        var gc = GradientCheck()
        #expect(gc.check(l, inputShape: [2, 16, 3, 3], h: 1e-3) < 2e-3)
    }

    /// After a convolution the data arrive blocked by 8 or 16 channels, and oneDNN lays the slopes
    /// and their gradients out to match (MTCNN's layers): the gradients must survive the way back.
    @Test func preluOnBlockedData() {
        var rng = SplitMix64(seed: 7)
        let p = PReLU(24, initial: 0.2)
        for c in 0..<24 { p.weight.values[c] = -0.3 + 0.05 * Float(c) }
        p.weight.changed()
        var gc = GradientCheck()
        #expect(gc.check(Sequential([Conv2D(3, 24, kernel: 3, padding: 0, rng: &rng), p]), inputShape: [2, 3, 6, 6], h: 1e-3) < 2e-3)
    }

    @Test func preluOnFeatures() {
        var gc = GradientCheck()
        #expect(gc.check(PReLU(6), inputShape: [4, 6], h: 1e-3) < 2e-3)
    }

    @Test func maxPool() {
        var gc = GradientCheck()
        #expect(gc.check(Pool2D.maxPool(2), inputShape: [2, 16, 6, 6], h: 1e-3) < 2e-3)
    }

    @Test func residualIdentity() {
        var rng = SplitMix64(seed: 8), gc = GradientCheck()
        #expect(gc.check(Residual(Sequential([Conv2D(16, 16, rng: &rng), BatchNorm(16)])), inputShape: [2, 16, 5, 5]) < 5e-3)
        // Channels that do not fill a block of 16 (padded layouts: oneDNN's sum ran a reference loop there).
        #expect(gc.check(Residual(Sequential([Conv2D(8, 8, rng: &rng), BatchNorm(8)])), inputShape: [2, 8, 5, 5]) < 5e-3)
    }

    @Test func maxPoolCeilMode() {
        // 7x7, kernel 3, stride 2, ceil mode: 3x3 output (PyTorch MaxPool2d(3, 2, ceil_mode=True)).
        let p = Pool2D.maxPool(3, stride: 2, ceilMode: true)
        #expect(p.outputShape([1, 16, 7, 7]) == [1, 16, 3, 3])
        #expect(p.outputShape([1, 16, 8, 8]) == [1, 16, 4, 4])
        var gc = GradientCheck()
        #expect(gc.check(p, inputShape: [2, 16, 8, 8], h: 1e-3) < 2e-3)
        // The overhanging window takes the max of what it covers.
        let x = Tensor(shape: [1, 1, 3, 3], values: (1...9).map(Float.init))
        #expect(Pool2D.maxPool(2, stride: 2, ceilMode: true).forward(x, mode: .inference).plainValues() == [5, 6, 8, 9])
    }

    @Test func averagePool() {
        var gc = GradientCheck()
        #expect(gc.check(Pool2D.averagePool(2), inputShape: [2, 16, 6, 6]) < 2e-3)
    }

    @Test func globalAveragePool() {
        var gc = GradientCheck()
        #expect(gc.check(Pool2D.globalAverage(), inputShape: [2, 16, 5, 5]) < 2e-3)
    }

    @Test func dropoutWithFixedMask() {
        let d = Dropout(0.5, seed: 9)
        var gc = GradientCheck()
        #expect(gc.check(d, inputShape: [4, 32], reset: { d.reseed(9) }) < 2e-3)
    }

    @Test func flatten() {
        var gc = GradientCheck()
        #expect(gc.check(Flatten(), inputShape: [2, 3, 4, 4]) < 1e-3)
    }

    @Test func residualWithProjection() {
        var rng = SplitMix64(seed: 5), gc = GradientCheck()
        let body = Sequential([Conv2D(8, 16, kernel: 3, stride: 2, rng: &rng), BatchNorm(16), ReLU(), Conv2D(16, 16, rng: &rng)])
        let block = Residual(body, shortcut: Conv2D(8, 16, kernel: 1, stride: 2, padding: 0, rng: &rng))
        #expect(gc.fractionWithin(1e-2, block, inputShape: [2, 8, 6, 6]) >= 0.9)
    }

    @Test func smallNetworkEndToEnd() {
        // 24x24 input, so the last stage's batch norm still sees 4x3x3 values per channel.
        let net = ModelSpec(preset: .cnn, width: 16, inputSize: 24, classes: 3, dropout: 0).build(seed: 7)
        net.skipInputGradient = false
        var gc = GradientCheck()
        #expect(gc.fractionWithin(2e-2, net, inputShape: [4, 1, 24, 24], samples: 8) >= 0.9)
    }

    /// The loss: analytic dloss/dlogits against finite differences, with smoothing and class weights.
    @Test(arguments: [(Float(0), false), (Float(0.1), true)])
    func softmaxCrossEntropy(smoothing: Float, weighted: Bool) {
        var rng = SplitMix64(seed: 11)
        let n = 5, k = 7
        let z = (0..<n * k).map { _ in rng.uniform(-3, 3) }
        let labels = (0..<n).map { _ in Int(rng.next() % UInt64(k)) }
        let loss = SoftmaxCrossEntropy(labelSmoothing: smoothing, classWeights: weighted ? (0..<k).map { Float($0 + 1) / 4 } : nil)
        let g = loss(Tensor(shape: [n, k], values: z), .labels(labels)).gradient.plainValues()
        let h: Float = 1e-2
        for i in 0..<n * k {
            var p = z, m = z
            p[i] += h; m[i] -= h
            let num = (loss(Tensor(shape: [n, k], values: p), .labels(labels)).loss
                - loss(Tensor(shape: [n, k], values: m), .labels(labels)).loss) / (2 * h)
            #expect(abs(num - g[i]) < 2e-3, "logit \(i): \(num) vs \(g[i])")
        }
    }
}
