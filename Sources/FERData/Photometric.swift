import Foundation
import FEREngine
import FERIO

/// Photometric augmentation: the ways a real photo's face differs from a FER2013 face besides its
/// pose (light, exposure, camera softness, sensor noise, resolution, compression). Applied after the geometric
/// warp to a size x size image in [0, 1]; the result stays in [0, 1]. All randomness comes from the
/// generator passed in. A field of 0 turns that transform off.
public struct Photometric: Codable, Sendable, Equatable {
    /// Maximum additive brightness shift (uniform in ±).
    public var brightness: Float = 0.15
    /// Maximum contrast change: the image is scaled about its mean by 1 ± contrast.
    public var contrast: Float = 0.3
    /// Maximum log-gamma: each pixel becomes x^g with g = exp(uniform(±gamma)).
    public var gamma: Float = 0.3
    /// Probability of a Gaussian blur with sigma uniform in 0.3-1.2 pixels (soft or out-of-focus photos).
    public var blur: Float = 0.3
    /// Probability of Gaussian noise with sigma uniform in 0-0.04 (sensor noise, dark photos).
    public var noise: Float = 0.3
    /// Probability of shrinking to 35-80% of the side and back (low-resolution faces).
    public var downscale: Float = 0.2
    /// Probability of a JPEG encode and decode at a quality uniform in 20-70 (last, as a camera or
    /// a website compresses the finished picture).
    public var jpeg: Float = 0.3

    public init() {}

    /// Cards written before `jpeg` existed decode with it off, which is what those runs did.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        brightness = try c.decode(Float.self, forKey: .brightness)
        contrast = try c.decode(Float.self, forKey: .contrast)
        gamma = try c.decode(Float.self, forKey: .gamma)
        blur = try c.decode(Float.self, forKey: .blur)
        noise = try c.decode(Float.self, forKey: .noise)
        downscale = try c.decode(Float.self, forKey: .downscale)
        jpeg = try c.decodeIfPresent(Float.self, forKey: .jpeg) ?? 0
    }

    public static var none: Photometric {
        var p = Photometric()
        p.brightness = 0; p.contrast = 0; p.gamma = 0; p.blur = 0; p.noise = 0; p.downscale = 0; p.jpeg = 0
        return p
    }

    public var isNone: Bool { self == .none }

    /// Every field in its range: amounts >= 0 (brightness and contrast at most 1), probabilities in [0, 1].
    public var problem: String? {
        for (name, v) in [("brightness", brightness), ("contrast", contrast), ("gamma", gamma)] where !(v >= 0 && v <= 1) {
            return "\(name) must be in [0, 1], got \(v)"
        }
        for (name, v) in [("blur", blur), ("noise", noise), ("downscale", downscale), ("jpeg", jpeg)] where !(v >= 0 && v <= 1) {
            return "\(name) probability must be in [0, 1], got \(v)"
        }
        return nil
    }

    /// Transforms `img` (size x size floats in [0, 1]) in place.
    public func apply(_ img: UnsafeMutablePointer<Float>, size: Int, rng: inout SplitMix64) {
        let n = size * size
        // Draw every random number in a fixed order, whether or not a transform fires, so that
        // changing one probability does not reshuffle the others.
        let down = rng.unit() < downscale, downFactor = rng.uniform(0.35, 0.8)
        let blurs = rng.unit() < blur, sigma = rng.uniform(0.3, 1.2)
        let g = exp(rng.uniform(-gamma, gamma))
        let c = 1 + rng.uniform(-contrast, contrast)
        let b = rng.uniform(-brightness, brightness)
        let noisy = rng.unit() < noise, noiseSigma = rng.uniform(0, 0.04)

        if down { Self.downAndUp(img, size: size, factor: downFactor) }
        if blurs { Self.gaussianBlur(img, size: size, sigma: sigma) }
        var mean: Float = 0
        for i in 0..<n { mean += img[i] }
        mean /= Float(n)
        for i in 0..<n {
            var x = img[i]
            if g != 1 { x = pow(max(x, 0), g) }
            x = (x - mean) * c + mean + b
            img[i] = x
        }
        if noisy {
            var i = 0
            while i < n {
                // Box-Muller: two normal samples per pair of uniforms.
                let u1 = max(rng.unit(), 1e-7), u2 = rng.unit()
                let r = (-2 * log(u1)).squareRoot() * noiseSigma
                img[i] += r * cos(2 * .pi * u2)
                if i + 1 < n { img[i + 1] += r * sin(2 * .pi * u2) }
                i += 2
            }
        }
        for i in 0..<n { img[i] = min(max(img[i], 0), 1) }
        // Drawn only when on, so that runs from before JPEG existed see the same numbers.
        if jpeg > 0 {
            let compress = rng.unit() < jpeg, quality = Int(rng.uniform(20, 70).rounded())
            if compress { Self.jpegRoundTrip(img, size: size, quality: quality) }
        }
    }

    /// Quantises to 8 bits, encodes and decodes as JPEG, and writes the result back in [0, 1].
    static func jpegRoundTrip(_ img: UnsafeMutablePointer<Float>, size: Int, quality: Int) {
        let n = size * size
        let bytes = (0..<n).map { UInt8((min(max(img[$0], 0), 1) * 255).rounded()) }
        // The codec does not fail on a valid gray buffer; if it ever did, the face stays as it was.
        guard let out = try? Image(width: size, height: size, channels: 1, pixels: bytes).jpegRoundTrip(quality: quality) else { return }
        for i in 0..<n { img[i] = Float(out.pixels[i]) / 255 }
    }

    /// Separable Gaussian blur with replicated borders.
    static func gaussianBlur(_ img: UnsafeMutablePointer<Float>, size: Int, sigma: Float) {
        let radius = max(1, Int((2.5 * sigma).rounded(.up)))
        var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        var tmp = [Float](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                var s: Float = 0
                for k in -radius...radius { s += kernel[k + radius] * img[y * size + min(max(x + k, 0), size - 1)] }
                tmp[y * size + x] = s
            }
        }
        for y in 0..<size {
            for x in 0..<size {
                var s: Float = 0
                for k in -radius...radius { s += kernel[k + radius] * tmp[min(max(y + k, 0), size - 1) * size + x] }
                img[y * size + x] = s
            }
        }
    }

    /// Shrinks to round(size x factor) by area averaging and grows back bilinearly.
    static func downAndUp(_ img: UnsafeMutablePointer<Float>, size: Int, factor: Float) {
        let small = max(2, Int((Float(size) * factor).rounded()))
        guard small < size else { return }
        var low = [Float](repeating: 0, count: small * small)
        let ratio = Float(size) / Float(small)
        for sy in 0..<small {
            for sx in 0..<small {
                // Area average of the source pixels whose centres fall in this cell.
                let x0 = Int(Float(sx) * ratio), x1 = max(x0 + 1, Int(Float(sx + 1) * ratio))
                let y0 = Int(Float(sy) * ratio), y1 = max(y0 + 1, Int(Float(sy + 1) * ratio))
                var s: Float = 0
                for y in y0..<min(y1, size) { for x in x0..<min(x1, size) { s += img[y * size + x] } }
                low[sy * small + sx] = s / Float((min(y1, size) - y0) * (min(x1, size) - x0))
            }
        }
        let scale = Float(small) / Float(size), maxC = Float(small - 1)
        for y in 0..<size {
            let fy = min(max((Float(y) + 0.5) * scale - 0.5, 0), maxC)
            let y0 = Int(fy), y1 = min(y0 + 1, small - 1), wy = fy - Float(y0)
            for x in 0..<size {
                let fx = min(max((Float(x) + 0.5) * scale - 0.5, 0), maxC)
                let x0 = Int(fx), x1 = min(x0 + 1, small - 1), wx = fx - Float(x0)
                let top = low[y0 * small + x0] + (low[y0 * small + x1] - low[y0 * small + x0]) * wx
                let bottom = low[y1 * small + x0] + (low[y1 * small + x1] - low[y1 * small + x0]) * wx
                img[y * size + x] = top + (bottom - top) * wy
            }
        }
    }
}
