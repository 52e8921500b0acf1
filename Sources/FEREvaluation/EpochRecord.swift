/// The figures of one training epoch: a line of metrics.jsonl and a point of the training curves.
public struct EpochRecord: Codable, Sendable {
    public var epoch: Int
    public var learningRate: Double
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationLoss: Double
    public var validationAccuracy: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    /// With several validation sets: each one's loss, accuracy and mean recall, by name; `validationLoss` and
    /// `validationAccuracy` are then the figures the run selects on (`TrainConfig.selectOn`).
    public var validationSets: [String: SetFigures]? = nil
    /// The selected validation figures' mean recall over the classes present (absent in older logs).
    public var validationMeanRecall: Double? = nil

    public struct SetFigures: Codable, Sendable, Equatable {
        public var loss: Double, accuracy: Double
        /// Mean recall over the classes the set holds (absent in older logs).
        public var meanRecall: Double?
        public init(loss: Double, accuracy: Double, meanRecall: Double? = nil) { self.loss = loss; self.accuracy = accuracy; self.meanRecall = meanRecall }
    }

    public init(epoch: Int, learningRate: Double, trainLoss: Double, trainAccuracy: Double, validationLoss: Double,
                validationAccuracy: Double, seconds: Double, imagesPerSecond: Double) {
        self.epoch = epoch; self.learningRate = learningRate; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.validationLoss = validationLoss; self.validationAccuracy = validationAccuracy; self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}
