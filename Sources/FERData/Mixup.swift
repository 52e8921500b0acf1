import Foundation
import FEREngine

/// Mixup (Zhang et al. 2018): every image of a batch is blended with another image of the same batch,
/// x = l x_i + (1 - l) x_j, and so are their targets, with one l ~ Beta(alpha, alpha) per batch. The
/// labels (for the accuracy shown while training) stay those of the larger share.
public enum Mixup {
    public static func apply(_ batch: Batch, alpha: Float, classes k: Int, rng: inout SplitMix64) -> Batch {
        let n = batch.count, px = batch.size * batch.size
        guard n > 1, alpha > 0 else { return batch }
        let l = beta(alpha, rng: &rng)
        let lam = max(l, 1 - l)  // the image itself dominates, so its label stays the right one
        var partner = Array(0..<n)
        partner.shuffle(using: &rng)
        var images = batch.images
        var targets = [Float](repeating: 0, count: n * k)
        let source = batch.targets ?? batch.labels.enumerated().reduce(into: [Float](repeating: 0, count: n * k)) { t, e in t[e.offset * k + e.element] = 1 }
        for i in 0..<n {
            let j = partner[i]
            for p in 0..<px { images[i * px + p] = lam * batch.images[i * px + p] + (1 - lam) * batch.images[j * px + p] }
            for c in 0..<k { targets[i * k + c] = lam * source[i * k + c] + (1 - lam) * source[j * k + c] }
        }
        return Batch(images: images, labels: batch.labels, targets: targets, size: batch.size)
    }

    /// Beta(a, a) from two Gamma(a) draws.
    static func beta(_ a: Float, rng: inout SplitMix64) -> Float {
        let x = gamma(a, rng: &rng), y = gamma(a, rng: &rng)
        return x + y > 0 ? x / (x + y) : 0.5
    }

    /// Gamma(a, 1) by Marsaglia and Tsang; for a < 1, Gamma(a + 1) x U^(1/a).
    static func gamma(_ a: Float, rng: inout SplitMix64) -> Float {
        if a < 1 { return gamma(a + 1, rng: &rng) * pow(max(rng.unit(), 1e-7), 1 / a) }
        let d = a - 1 / 3, c = 1 / (9 * d).squareRoot()
        while true {
            var x: Float, v: Float
            repeat {
                let u1 = max(rng.unit(), 1e-7), u2 = rng.unit()
                x = (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = max(rng.unit(), 1e-7)
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v }
        }
    }
}
