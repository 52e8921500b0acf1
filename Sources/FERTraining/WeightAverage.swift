import FEREngine
import FERIO
import FERModels

/// An exponential moving average of a network's weights and batch-norm statistics (Polyak
/// averaging, as timm's `ModelEmaV2` keeps): after every step, average = d x average + (1 - d) x
/// weights. The average follows the trajectory with the step-to-step noise filtered out, so it
/// usually validates higher and steadier than the weights themselves, most of all on a short or
/// noisy run. It costs one multiply-add per weight per step (the network's 5 M, against its
/// 186 M x 64 x 3 for the step itself).
///
/// Early on the decay is min(d, (1 + t) / (10 + t)) at step t, so the random initialisation is
/// forgotten within the first steps instead of the first 1 / (1 - d).
final class WeightAverage {
    let decay: Float
    /// A network of the same architecture holding the average; validated and saved in place of the
    /// trained one.
    let model: Classifier
    private let sources: [Parameter]
    private let targets: [Parameter]

    /// Starts the average at `trained`'s present weights.
    init(of trained: Classifier, decay: Float) {
        self.decay = decay
        model = Classifier(spec: trained.spec, classNames: trained.classNames, sourceSide: trained.sourceSide)
        sources = trained.network.parameters + trained.network.buffers
        targets = model.network.parameters + model.network.buffers
        restart()
    }

    /// Sets the average to the trained network's present weights (the start of a run, after a
    /// fine-tune's starting point is loaded).
    func restart() {
        for (s, t) in zip(sources, targets) {
            let src = s.values, dst = t.values
            for i in 0..<dst.count { dst[i] = src[i] }
            t.changed()
        }
    }

    /// The decay used after step `step` (0-based): warmed up, then `decay`.
    static func decay(_ decay: Float, atStep step: Int) -> Float {
        min(decay, Float(1 + step) / Float(10 + step))
    }

    /// Folds the trained network's weights after step `step` into the average.
    func update(step: Int) {
        let d = Self.decay(decay, atStep: step), e = 1 - d
        for (s, t) in zip(sources, targets) {
            let src = s.values, dst = t.values
            for i in 0..<dst.count { dst[i] = d * dst[i] + e * src[i] }
            t.changed()
        }
    }

    /// Tensor names in last.safetensors: the average's, beside the trained network's own.
    static let prefix = "average/"

    func save(into st: inout SafeTensors) {
        for t in targets { st.add(Self.prefix + t.name, shape: t.value.shape, values: Array(t.values)) }
    }

    /// Reads the average back from a checkpoint `save` wrote; an error names a missing or damaged tensor.
    func restore(from st: SafeTensors, path: String) throws {
        if let first = targets.first, st[Self.prefix + first.name] == nil {
            throw TrainingError.resumeMismatch("\(path) has no weight average ('\(Self.prefix + first.name)'): it was saved by a run without --ema")
        }
        try Checkpoint.restore(model, from: st, path: path, prefix: Self.prefix)
    }
}
