import Foundation
import FEREngine

/// Training-time augmentation and the matching evaluation transform. Every image becomes a
/// `inputSize` x `inputSize` float image scaled to [0, 1].
///
/// Training: one affine warp (horizontal flip, rotation, scale, shift, and a random crop position)
/// with bilinear sampling and replicated borders, then optional photometric changes and random erasing. Evaluation: the
/// centre crop. All randomness comes from the generator passed in, so a seed fixes every image.
public struct Augmentation: Codable, Sendable, Equatable {
    public var flip = true
    /// Maximum rotation, degrees (uniform in ±).
    public var rotation: Float = 10
    /// Maximum shift as a fraction of the side (uniform in ±).
    public var shift: Float = 0.1
    /// Maximum relative zoom (scale uniform in 1 ± scale).
    public var scale: Float = 0.1
    /// Probability of random erasing (a rectangle of 2-20% of the area set to noise).
    public var erasing: Float = 0.25
    /// Light, contrast, blur, noise and resolution changes (nil: none; optional so that configs
    /// written before it existed still load).
    public var photometric: Photometric? = nil

    public init() {}

    /// No augmentation at all (the crop, if any, is still random during training).
    public static var none: Augmentation {
        var a = Augmentation()
        a.flip = false; a.rotation = 0; a.shift = 0; a.scale = 0; a.erasing = 0
        return a
    }

    /// Writes one augmented image. `src` is side x side bytes; `out` receives size x size floats.
    public func apply(_ src: UnsafePointer<UInt8>, side: Int, into out: UnsafeMutablePointer<Float>, size: Int, rng: inout SplitMix64) {
        let flipped = flip && rng.unit() < 0.5
        let angle = rotation > 0 ? rng.uniform(-rotation, rotation) * .pi / 180 : 0
        let zoom = scale > 0 ? 1 + rng.uniform(-scale, scale) : 1
        let tx = shift > 0 ? rng.uniform(-shift, shift) * Float(side) : 0
        let ty = shift > 0 ? rng.uniform(-shift, shift) * Float(side) : 0
        // Random crop: offset of the size x size window inside side x side.
        let margin = Float(side - size)
        let cx = margin > 0 ? Float(Int(rng.unit() * (margin + 1))) - margin / 2 : 0
        let cy = margin > 0 ? Float(Int(rng.unit() * (margin + 1))) - margin / 2 : 0
        // Inverse map: output pixel -> source pixel, about the image centre.
        let c = (Float(side) - 1) / 2, co = (Float(size) - 1) / 2
        let cosA = cos(angle) / zoom, sinA = sin(angle) / zoom
        for v in 0..<size {
            for u in 0..<size {
                var x = Float(u) - co + cx, y = Float(v) - co + cy
                if flipped { x = -x }
                let sx = cosA * x - sinA * y + c - tx
                let sy = sinA * x + cosA * y + c - ty
                out[v * size + u] = Augmentation.bilinear(src, side, sx, sy)
            }
        }
        if let p = photometric {
            var prng = rng.derived(0x9407)  // its own stream: the geometric draws stay as they were
            p.apply(out, size: size, rng: &prng)
        }
        if erasing > 0, rng.unit() < erasing { erase(out, size: size, rng: &rng) }
    }

    /// Random erasing (Zhong et al. 2017): a rectangle of 2-20% of the area, aspect 0.3-3.3, set to noise.
    func erase(_ out: UnsafeMutablePointer<Float>, size: Int, rng: inout SplitMix64) {
        for _ in 0..<10 {
            let area = Float(size * size) * rng.uniform(0.02, 0.2)
            let aspect = exp(rng.uniform(log(0.3), log(3.3)))
            let h = Int((area * aspect).squareRoot()), w = Int((area / aspect).squareRoot())
            guard h > 0, w > 0, h < size, w < size else { continue }
            let y0 = Int(rng.unit() * Float(size - h)), x0 = Int(rng.unit() * Float(size - w))
            for y in y0..<y0 + h { for x in x0..<x0 + w { out[y * size + x] = rng.unit() } }
            return
        }
    }

    @inline(__always)
    static func bilinear(_ src: UnsafePointer<UInt8>, _ side: Int, _ x: Float, _ y: Float) -> Float {
        let maxC = Float(side - 1)
        let xc = min(max(x, 0), maxC), yc = min(max(y, 0), maxC)
        let x0 = Int(xc), y0 = Int(yc)
        let x1 = min(x0 + 1, side - 1), y1 = min(y0 + 1, side - 1)
        let fx = xc - Float(x0), fy = yc - Float(y0)
        let a = Float(src[y0 * side + x0]), b = Float(src[y0 * side + x1])
        let c = Float(src[y1 * side + x0]), d = Float(src[y1 * side + x1])
        let top = a + (b - a) * fx, bottom = c + (d - c) * fx
        return (top + (bottom - top) * fy) * (1 / 255)
    }

    /// Evaluation view `view` of an image: 0 is the centre crop; with test-time augmentation,
    /// 1 is its mirror, and 2-9 the four corner crops and their mirrors (ten-crop).
    public static func evalView(_ src: UnsafePointer<UInt8>, side: Int, into out: UnsafeMutablePointer<Float>, size: Int, view: Int = 0) {
        let m = side - size
        let corner = view / 2
        let (ox, oy): (Int, Int) = [(m / 2, m / 2), (0, 0), (m, 0), (0, m), (m, m)][corner]
        let mirror = view % 2 == 1
        for v in 0..<size {
            for u in 0..<size {
                let x = mirror ? ox + size - 1 - u : ox + u
                out[v * size + u] = Float(src[(oy + v) * side + x]) * (1 / 255)
            }
        }
    }
}

/// Test-time augmentation: which views are averaged at evaluation.
public enum TestTimeAugmentation: String, CaseIterable, Codable, Sendable {
    case none, flip, tencrop
    public var views: Int { self == .none ? 1 : self == .flip ? 2 : 10 }
}
