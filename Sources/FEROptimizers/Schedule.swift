import Foundation

/// Learning-rate schedules. `rate(step:epoch:)` is asked before every step; plateau schedules also
/// hear each epoch's validation accuracy.
public enum ScheduleKind: String, CaseIterable, Codable, Sendable {
    case constant, cosine, step, plateau
}

public struct ScheduleConfig: Codable, Sendable, Equatable {
    public var kind: ScheduleKind = .cosine
    /// Linear warm-up from 0 over this many epochs (cosine).
    public var warmupEpochs: Double = 1
    /// Step schedule: multiply by `gamma` every `stepEpochs`.
    public var stepEpochs: Int = 10
    public var gamma: Float = 0.1
    /// Plateau: multiply by `gamma` after `patience` epochs without a better validation accuracy.
    public var patience: Int = 5
    public var minRate: Float = 0
    public init() {}
}

public final class LearningRateSchedule {
    public let config: ScheduleConfig
    public let baseRate: Float
    public let totalSteps: Int
    public let stepsPerEpoch: Int
    /// Plateau state (saved in checkpoints).
    public private(set) var plateauScale: Float = 1
    public private(set) var best: Double = -.infinity
    public private(set) var badEpochs = 0

    public init(_ config: ScheduleConfig, baseRate: Float, epochs: Int, stepsPerEpoch: Int) {
        self.config = config
        self.baseRate = baseRate
        self.stepsPerEpoch = max(stepsPerEpoch, 1)
        self.totalSteps = max(epochs * self.stepsPerEpoch, 1)
    }

    /// Learning rate for global step `step` (0-based).
    public func rate(step: Int) -> Float {
        let epoch = Double(step) / Double(stepsPerEpoch)
        switch config.kind {
        case .constant:
            return baseRate
        case .cosine:
            let warm = config.warmupEpochs * Double(stepsPerEpoch)
            if Double(step) < warm { return baseRate * Float(Double(step + 1) / warm) }
            let progress = min(1, (Double(step) - warm) / max(Double(totalSteps) - warm, 1))
            return config.minRate + (baseRate - config.minRate) * Float(0.5 * (1 + cos(Double.pi * progress)))
        case .step:
            return baseRate * pow(config.gamma, Float(Int(epoch) / max(config.stepEpochs, 1)))
        case .plateau:
            return max(baseRate * plateauScale, config.minRate)
        }
    }

    /// Feeds an epoch's validation accuracy to the plateau rule.
    public func epochEnded(validationAccuracy: Double) {
        guard config.kind == .plateau else { return }
        if validationAccuracy > best + 1e-4 {
            best = validationAccuracy
            badEpochs = 0
        } else {
            badEpochs += 1
            if badEpochs >= config.patience {
                plateauScale *= config.gamma
                badEpochs = 0
            }
        }
    }

    public var state: [Float] { [plateauScale, Float(best.isFinite ? best : -1), Float(badEpochs)] }

    public func load(state s: [Float]) {
        guard s.count == 3 else { return }
        plateauScale = s[0]
        best = s[1] < 0 ? -.infinity : Double(s[1])
        badEpochs = Int(s[2])
    }
}
