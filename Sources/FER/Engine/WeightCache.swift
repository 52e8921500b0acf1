/// A parameter's value in the layout a primitive wants, reordered only when the value changed.
/// Parameters stay plain (oihw, oi) for optimizers and checkpoints; this is the one edge where they
/// meet oneDNN's blocked weight layouts.
final class WeightCache {
    private var cached: Tensor?
    private var version = -1

    func tensor(_ p: Parameter, as desc: MemoryDesc) -> Tensor {
        tensor(p.value, version: p.version, as: desc)
    }

    /// `plain` is the parameter's value (or a reshaped view of it) and `version` its change count.
    func tensor(_ plain: Tensor, version: Int, as desc: MemoryDesc) -> Tensor {
        if desc.sameLayout(as: plain.desc) { return plain }
        if let c = cached, self.version == version, c.desc.sameLayout(as: desc) { return c }
        let t = cached.flatMap { $0.desc.sameLayout(as: desc) ? $0 : nil } ?? Tensor(desc: desc, zeroed: false)
        t.assign(reordering: plain)
        cached = t
        self.version = version
        return t
    }
}
