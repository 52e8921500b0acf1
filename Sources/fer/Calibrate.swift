import ArgumentParser

/// `fer calibrate crop|prior|temperature|int8`: the measurements that tune a model or the pipeline
/// after training, one command with four beneath it.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure and store what tunes a trained model: crop framing, class priors, temperature, int8 ranges.",
        subcommands: [CalibrateCrop.self, CalibratePrior.self, CalibrateTemperature.self, CalibrateInt8.self])
}
