import FERData
import FEREngine
import FERModels
import Foundation

/// Knowledge distillation (Hinton et al. 2015), offline: trained teachers label every training face
/// once, before training, and each face's target becomes
///
///   (1 - w) x its own target (one-hot label, or FER+ soft target) + w x mean over teachers of softmax(logits / T)
///
/// T > 1 softens the teachers' answers so that what they think of the other classes ("this Neutral
/// looks a little Happy") carries over; an ensemble of teachers is distilled into one network.
/// The teachers see each face's centre view, or the mean over test-time views (`tta`: the mirror
/// image, or ten crops), which makes a stronger teacher; the student sees it augmented.
public enum Distillation {
    /// The teachers' mean softened probabilities, [faces x classes], row-major.
    public static func teacherProbabilities(_ data: FaceDataset, teachers: [String], temperature: Float,
                                            tta: TestTimeAugmentation = .none, progress: ((Int) -> Void)? = nil) throws -> [Float] {
        let k = data.classNames.count
        var sum = [Float](repeating: 0, count: data.count * k)
        var done = 0
        for path in teachers {
            let (model, _, st) = try Checkpoint.load(path)
            try Checkpoint.checkClasses(st, path: path, matching: data.classNames, role: "teacher")
            try model.compile(.fp32)  // batch norm folded: faster, and the same targets on every CPU
            for r in evaluationRanges(data, batchSize: max(1, 256 / tta.views)) {
                let p = model.probabilities(evaluationBatch(data, r, size: model.spec.inputSize, tta: tta), views: tta.views, temperature: temperature)
                for (j, i) in r.enumerated() {
                    for c in 0..<k { sum[i * k + c] += p[j][c] }
                }
                done += r.count
                progress?(done)
            }
        }
        let n = Float(teachers.count)
        return sum.map { $0 / n }
    }

    /// `data`'s targets blended with the teachers' probabilities (weight `weight`).
    public static func blend(_ data: FaceDataset, teacher: [Float], weight: Float) -> [Float] {
        let k = data.classNames.count
        return (0..<data.count * k).map { j in
            let own = data.targets?[j] ?? (data.labels[j / k] == j % k ? 1 : 0)
            return (1 - weight) * own + weight * teacher[j]
        }
    }
}
