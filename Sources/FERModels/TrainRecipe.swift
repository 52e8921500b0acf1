import FERData
import FEROptimizers

/// Named training recipes: every setting of a run but its data, measured and written up in
/// docs/experiments.md. `fer train --recipe NAME` starts from one; options given beside it win.
public enum TrainRecipe: String, Codable, Sendable, CaseIterable {
    /// The default network from scratch in 35 epochs, about an hour on a 2-core AVX-512 CPU (issue 20):
    /// SGD with Nesterov momentum, one warm-up epoch to 0.02, then a cosine to zero; weight decay 5e-4;
    /// the geometric augmentation (flip, rotation, shift, zoom, erasing) and nothing that slows fitting
    /// (no mixup, no photometric): a short schedule underfits before it overfits. With `--ferplus`, the
    /// targets blend FER2013's label with FER+'s votes (0.3), a label smoothing that knows the classes;
    /// plain label smoothing 0.1 on top, for FER2013's noisy labels. What is validated and kept is a
    /// moving average of the weights (decay 0.999, about two epochs), so the epoch picked is less a
    /// matter of one epoch's swing. fast2 (docs/experiments.md): 69.66% PrivateTest in 35 epochs.
    case fast
    /// The FER2013 record attempt (issue 20): `fast` (network, optimiser, smoothed targets, average) for
    /// 120 epochs (the published ~300 with a plateau schedule, compressed by the cosine). A long run
    /// overfits where a short one underfits (the 80-epoch vgg48 run ended at 84% train against 69%
    /// PublicTest), so it adds mixup (alpha 0.2).
    case long

    public var config: TrainConfig {
        var c = TrainConfig()
        switch self {
        case .long:
            c = Self.fast.config
            c.epochs = 120
            c.schedule.warmupEpochs = 2
            c.mixup = 0.2
        case .fast:
            c.preset = .vgg
            c.width = 48
            c.fcWidth = 1024
            c.inputSize = 40
            c.epochs = 35
            c.batchSize = 64
            c.optimizer.kind = .sgd
            c.optimizer.learningRate = 0.02
            c.optimizer.momentum = 0.9
            c.optimizer.nesterov = true
            c.optimizer.weightDecay = 5e-4
            c.schedule.kind = .cosine
            c.schedule.warmupEpochs = 1
            c.ferplusMode = .blend
            c.ferplusWeight = 0.3
            c.labelSmoothing = 0.1
            c.ema = 0.999
            c.augmentation = Augmentation()
        }
        c.recipe = self
        return c
    }
}
