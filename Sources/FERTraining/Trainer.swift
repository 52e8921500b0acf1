import Foundation
import FEREngine
import FEROptimizers
import FERIO
import FERData
import FERModels
import FEREvaluation

/// Where a run stands; saved in last.safetensors so `--resume` continues exactly.
struct TrainerState: Codable {
    var epoch = 0            // epochs completed
    var stepInEpoch = 0      // batches done in the current epoch (after an interruption)
    var globalStep = 0
    var bestAccuracy = -1.0
    var bestEpoch = 0
    var epochsWithoutImprovement = 0
    var history: [EpochRecord] = []
    var partialLoss = 0.0, partialCorrect = 0, partialSeen = 0, partialSeconds = 0.0
    var trainSeconds = 0.0
}

/// Set from a signal handler: the trainer saves its state after the current step and returns.
public final class StopFlag: @unchecked Sendable {
    public static let shared = StopFlag()
    private var flag = false
    private let lock = NSLock()
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return flag }
    public func set() { lock.lock(); flag = true; lock.unlock() }
    public func reset() { lock.lock(); flag = false; lock.unlock() }
}

public struct TrainingOutcome: Sendable {
    public var epochsCompleted: Int
    public var bestValidationAccuracy: Double
    public var bestEpoch: Int
    public var interrupted: Bool
    public var stoppedEarly: Bool
    public var history: [EpochRecord]
    public var trainSeconds: Double
}

/// Trains a preset on FER2013: shuffled augmented batches, validation on PublicTest every epoch,
/// the best checkpoint by validation accuracy, early stopping, exact resume, a metrics log and a
/// training-curve image. Every file is written atomically.
///
/// Files in `outDir`: config.json, last.safetensors (model + optimizer + state), best.safetensors
/// (model + card), metrics.jsonl, curves.png.
public final class Trainer {
    public let config: TrainConfig
    public let outDir: String
    public var say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    public var showProgress = true

    public init(config: TrainConfig, outDir: String) {
        self.config = config
        self.outDir = outDir
    }

    var lastPath: String { (outDir as NSString).appendingPathComponent("last.safetensors") }
    public var bestPath: String { (outDir as NSString).appendingPathComponent("best.safetensors") }

    /// Training and validation sets as the config asks (FER+ labels, limits, hold-out).
    public static func datasets(_ config: TrainConfig) throws -> (train: FaceDataset, validation: FaceDataset) {
        var splits = try DatasetLoader.load(config.data)
        if let fp = config.ferplus {
            let plus = try FERPlus.load(fp)
            for (k, v) in splits { splits[k] = try plus.relabel(v, mode: config.ferplusMode, weight: config.ferplusWeight ?? 0.5) }
        }
        guard var train = splits[.training], train.count > 0 else { throw TrainingError.noTrainingData("\(config.data) has no Training split") }
        var validation: FaceDataset
        if let v = splits[.publicTest], v.count > 0 {
            validation = v
        } else {
            // Image folders without val/: hold out a seeded fraction of train/.
            let order = TrainingBatches.order(count: train.count, seed: config.seed ^ 0x7A1, epoch: -1)
            let cut = Int(Double(train.count) * config.validationFraction)
            validation = train.subset(Array(order[..<cut]).sorted())
            train = train.subset(Array(order[cut...]).sorted())
        }
        if let l = config.limit, l < train.count { train = train.subset(Array(0..<l)) }
        if let l = config.validationLimit, l < validation.count { validation = validation.subset(Array(0..<l)) }
        return (train, validation)
    }

    public func run(resume: Bool = false) throws -> TrainingOutcome {
        try config.validate()
        DNNL.setThreads(config.threads)
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let (train, validation) = try Self.datasets(config)
        say("data: \(train.count) training, \(validation.count) validation images from \(config.data)")

        let spec = config.modelSpec
        let model = Classifier(spec: spec, classNames: train.classNames, seed: config.seed)
        let params = model.network.parameters
        let optimizer = config.optimizer.make(params)
        let batchesPerEpoch = max(1, train.count / config.batchSize)
        let schedule = LearningRateSchedule(config.schedule, baseRate: config.optimizer.learningRate,
                                            epochs: config.epochs, stepsPerEpoch: batchesPerEpoch)
        var state = TrainerState()
        if resume && !FileManager.default.fileExists(atPath: lastPath) {
            say("nothing to resume in \(outDir) (no last.safetensors): starting a new run")
        }
        if resume, FileManager.default.fileExists(atPath: lastPath) {
            state = try restore(model: model, optimizer: optimizer, schedule: schedule)
            say("resumed from \(lastPath) at epoch \(state.epoch + 1), step \(state.stepInEpoch)")
        } else {
            if let source = config.initFrom {
                try Checkpoint.restore(model, from: try SafeTensors.read(source), path: source)
                say("initialised from \(source)")
            }
            try AtomicFile.write(Data(try JSONEncoder.sorted.encode(config)), to: (outDir as NSString).appendingPathComponent("config.json"))
        }
        say("model: \(spec.preset.rawValue) width \(spec.width), input \(spec.inputSize)x\(spec.inputSize), "
            + "\(model.parameterCount) parameters, \(model.multiplyAdds / 1_000_000) M multiply-adds/image")

        let loss = SoftmaxCrossEntropy(labelSmoothing: config.labelSmoothing,
                                       classWeights: config.balancedClassWeights ? train.balancedClassWeights : nil)
        let dropouts = allLayers(model.network).compactMap { $0 as? Dropout }
        var stoppedEarly = false, interrupted = false

        epochs: while state.epoch < config.epochs {
            let epoch = state.epoch
            let bar = ProgressBar(total: batchesPerEpoch, label: "epoch \(epoch + 1)/\(config.epochs)", initial: state.stepInEpoch)
            bar.enabled = showProgress
            var seen = state.partialSeen, correct = state.partialCorrect, lossSum = state.partialLoss
            let epochStart = Date().addingTimeInterval(-state.partialSeconds)
            var step = state.stepInEpoch
            for batch in TrainingBatches(train, batchSize: config.batchSize, size: spec.inputSize, augmentation: config.augmentation,
                                         seed: config.seed, epoch: epoch, skip: step) {
                optimizer.learningRate = schedule.rate(step: state.globalStep)
                for (i, d) in dropouts.enumerated() { d.reseed(config.seed &+ UInt64(state.globalStep) &* 7919 &+ UInt64(i)) }
                let r = trainStep(model.network, batch, loss: loss, optimizer: optimizer, clipNorm: config.clipNorm)
                guard r.loss.isFinite else {
                    throw TrainingError.invalidConfig("the loss became \(r.loss) at epoch \(epoch + 1), step \(step + 1); lower the learning rate")
                }
                lossSum += Double(r.loss) * Double(batch.count)
                correct += r.correct
                seen += batch.count
                step += 1
                state.globalStep += 1
                let rate = Double(seen - state.partialSeen) / max(Date().timeIntervalSince(epochStart) - state.partialSeconds, 1e-9)
                bar.update(step, String(format: "loss %.4f acc %.1f%% %.0f img/s", lossSum / Double(seen), 100 * Double(correct) / Double(seen), rate))
                if StopFlag.shared.isSet {
                    state.stepInEpoch = step
                    state.partialLoss = lossSum; state.partialCorrect = correct; state.partialSeen = seen
                    state.partialSeconds = Date().timeIntervalSince(epochStart)
                    try saveLast(model: model, optimizer: optimizer, schedule: schedule, state: state)
                    if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
                    say("interrupted: state saved to \(lastPath); continue with --resume")
                    interrupted = true
                    break epochs
                }
            }
            let trainTime = Date().timeIntervalSince(epochStart)
            bar.finish(String(format: "loss %.4f acc %.1f%%", lossSum / Double(max(seen, 1)), 100 * Double(correct) / Double(max(seen, 1))))

            let (valLoss, valAcc) = evaluate(model, validation)
            let record = EpochRecord(epoch: epoch + 1, learningRate: Double(optimizer.learningRate),
                                     trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: Double(correct) / Double(max(seen, 1)),
                                     validationLoss: valLoss, validationAccuracy: valAcc, seconds: trainTime,
                                     imagesPerSecond: Double(seen - state.partialSeen) / max(trainTime - state.partialSeconds, 1e-9))
            state.history.append(record)
            state.trainSeconds += trainTime - state.partialSeconds
            state.epoch += 1
            state.stepInEpoch = 0
            state.partialLoss = 0; state.partialCorrect = 0; state.partialSeen = 0; state.partialSeconds = 0
            schedule.epochEnded(validationAccuracy: valAcc)
            var improved = ""
            if valAcc > state.bestAccuracy {
                state.bestAccuracy = valAcc
                state.bestEpoch = epoch + 1
                state.epochsWithoutImprovement = 0
                var card = ModelCard(spec: spec, classNames: train.classNames, training: config)
                card.epoch = epoch + 1
                card.metrics = ["validation_accuracy": valAcc, "validation_loss": valLoss, "train_seconds": state.trainSeconds]
                try Checkpoint.save(model, card: card, to: bestPath)
                try AtomicFile.write(Data(try JSONEncoder.sorted.encode(card)), to: (outDir as NSString).appendingPathComponent("best.json"))
                improved = " (best, saved)"
            } else {
                state.epochsWithoutImprovement += 1
            }
            say(String(format: "epoch %d/%d: train loss %.4f acc %.2f%% | val loss %.4f acc %.2f%%%@ | lr %.2e | %.0fs, %.0f img/s",
                       epoch + 1, config.epochs, record.trainLoss, 100 * record.trainAccuracy, valLoss, 100 * valAcc, improved,
                       record.learningRate, trainTime, record.imagesPerSecond))
            try saveLast(model: model, optimizer: optimizer, schedule: schedule, state: state)
            try writeLogs(state.history)
            if config.patience > 0, state.epochsWithoutImprovement >= config.patience {
                say("early stop: no better validation accuracy for \(config.patience) epochs")
                stoppedEarly = true
                break
            }
            if StopFlag.shared.isSet { interrupted = true; break }
        }
        return TrainingOutcome(epochsCompleted: state.epoch, bestValidationAccuracy: state.bestAccuracy, bestEpoch: state.bestEpoch,
                               interrupted: interrupted, stoppedEarly: stoppedEarly, history: state.history, trainSeconds: state.trainSeconds)
    }

    /// Mean cross-entropy and accuracy on a labelled set (inference mode, centre crop).
    public func evaluate(_ model: Classifier, _ data: FaceDataset) -> (loss: Double, accuracy: Double) {
        let probs = model.classify(data, batchSize: 256)
        var nll = 0.0, correct = 0
        for (p, y) in zip(probs, data.labels) {
            nll -= Foundation.log(Double(max(p[y], 1e-12)))
            if argmax(p) == y { correct += 1 }
        }
        return (nll / Double(max(data.count, 1)), Double(correct) / Double(max(data.count, 1)))
    }

    private func saveLast(model: Classifier, optimizer: Optimizer, schedule: LearningRateSchedule, state: TrainerState) throws {
        var extra = SafeTensors()
        for (k, v) in optimizer.state.sorted(by: { $0.key < $1.key }) { extra.add("optimizer/" + k, shape: [v.count], values: v) }
        extra.add("schedule/state", shape: [schedule.state.count], values: schedule.state)
        extra.metadata["trainer-state"] = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        var card = ModelCard(spec: model.spec, classNames: model.classNames, training: config)
        card.epoch = state.epoch
        try Checkpoint.save(model, card: card, to: lastPath, extra: extra)
    }

    private func restore(model: Classifier, optimizer: Optimizer, schedule: LearningRateSchedule) throws -> TrainerState {
        let st = try SafeTensors.read(lastPath)
        guard let json = st.metadata["swift-fer"], let card = try? JSONDecoder().decode(ModelCard.self, from: Data(json.utf8)) else {
            throw CheckpointError.notAModel(lastPath)
        }
        guard card.spec == model.spec else { throw TrainingError.resumeMismatch("\(lastPath) holds a different architecture (\(card.spec))") }
        try Checkpoint.restore(model, from: st, path: lastPath)
        var opt: [String: [Float]] = [:]
        for t in st.tensors where t.name.hasPrefix("optimizer/") { opt[String(t.name.dropFirst("optimizer/".count))] = t.values }
        try optimizer.load(state: opt)
        if let s = st["schedule/state"] { schedule.load(state: s.values) }
        guard let s = st.metadata["trainer-state"], let state = try? JSONDecoder().decode(TrainerState.self, from: Data(s.utf8)) else {
            throw TrainingError.resumeMismatch("\(lastPath) has no trainer state")
        }
        return state
    }

    private func writeLogs(_ history: [EpochRecord]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let lines = try history.map { String(decoding: try enc.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try AtomicFile.write(lines, to: (outDir as NSString).appendingPathComponent("metrics.jsonl"))
        try Plots.trainingCurves(history).write((outDir as NSString).appendingPathComponent("curves.png"))
    }
}

/// Every layer inside a network, containers included, depth first.
public func allLayers(_ layer: Layer) -> [Layer] {
    var out: [Layer] = [layer]
    if let s = layer as? Sequential { out += s.layers.flatMap(allLayers) }
    if let r = layer as? Residual { out += allLayers(r.body) + (r.shortcut.map(allLayers) ?? []) }
    return out
}
