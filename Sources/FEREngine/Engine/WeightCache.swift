import Foundation

/// A parameter's value in the layouts primitives want, reordered only when the value changed.
/// Parameters stay plain (oihw, oi) for optimizers and checkpoints; this is the one edge where they
/// meet oneDNN's blocked weight layouts. One cache serves a layer's forward and backward-data
/// primitives, so a layout both use is reordered once per update.
final class WeightCache {
    private var cached: [Data: (tensor: Tensor, version: Int)] = [:]

    func tensor(_ p: Parameter, as desc: MemoryDesc) -> Tensor {
        tensor(p.value, version: p.version, as: desc)
    }

    /// `plain` is the parameter's value (or a reshaped view of it) and `version` its change count.
    func tensor(_ plain: Tensor, version: Int, as desc: MemoryDesc) -> Tensor {
        if desc.sameLayout(as: plain.desc) { return plain }
        let key = desc.key
        if let c = cached[key], c.version == version { return c.tensor }
        let t = cached[key]?.tensor ?? Tensor(desc: desc, zeroed: false)
        t.assign(reordering: plain)
        cached[key] = (t, version)
        return t
    }
}
