import FEREngine

/// The model presets: the brief's fully connected ANN and three convolutional families.
/// A preset plus its `ModelSpec` fields rebuilds the exact architecture from a checkpoint.
public enum Preset: String, CaseIterable, Codable, Sendable {
    case mlp, cnn, vgg, resnet

    public var blurb: String {
        switch self {
        case .mlp: return "fully connected ANN: input-1024-512-classes, ReLU, dropout"
        case .cnn: return "small CNN: 3 stages of 2x(conv3x3+BN+ReLU)+maxpool, global average pool"
        case .vgg: return "VGG-style: 4 stages of 2x(conv3x3+BN+ReLU)+maxpool, FC-FC head"
        case .resnet: return "small ResNet: stem + 4 stages of basic residual blocks, global average pool"
        }
    }

    /// Default channel width of the first stage (later stages double it).
    public var defaultWidth: Int {
        switch self {
        case .mlp: return 1024
        case .cnn: return 32
        case .vgg: return 64
        case .resnet: return 32
        }
    }
}

/// Everything needed to rebuild a network: saved as JSON beside the weights.
public struct ModelSpec: Codable, Sendable, Equatable {
    public var preset: Preset
    /// First-stage channels (conv presets) or first hidden layer (mlp).
    public var width: Int
    /// Hidden units of the VGG head's two fully connected layers (0: 64 x width, as VGG's 4096).
    public var fcWidth: Int
    /// Side of the square grayscale input the network sees (48, or a crop such as 44 or 40).
    public var inputSize: Int
    public var classes: Int
    public var dropout: Float

    public init(preset: Preset, width: Int? = nil, fcWidth: Int = 0, inputSize: Int = 48, classes: Int = 7, dropout: Float? = nil) {
        self.preset = preset
        self.width = width ?? preset.defaultWidth
        self.fcWidth = fcWidth
        self.inputSize = inputSize
        self.classes = classes
        self.dropout = dropout ?? (preset == .cnn || preset == .resnet ? 0.2 : preset == .mlp ? 0.3 : 0.5)
    }

    public var inputShape: [Int] { [1, 1, inputSize, inputSize] }

    /// Widths and sizes a network can be built from on this machine. One check for every place a
    /// spec comes from: the command line (train, models, bench) and checkpoints.
    public var problem: String? {
        // mlp's width is hidden units; the convolutional presets' is first-stage channels.
        let widest = preset == .mlp ? 8192 : 256
        if !(1...widest).contains(width) { return "width must be between 1 and \(widest) for \(preset.rawValue), got \(width)" }
        if !(0...8192).contains(fcWidth) { return "the VGG head width must be between 0 and 8192, got \(fcWidth)" }
        if !(16...48).contains(inputSize) { return "input size must be between 16 and 48 (a crop of the 48x48 faces), got \(inputSize)" }
        if !(2...64).contains(classes) { return "a model needs 2 to 64 classes, got \(classes)" }
        if !(dropout >= 0 && dropout < 1) { return "dropout must be in [0, 1), got \(dropout)" }
        return nil
    }

    /// Builds the network with weights drawn from `seed`.
    public func build(seed: UInt64) -> Sequential {
        var rng = SplitMix64(seed: seed)
        let net: Sequential
        switch preset {
        case .mlp: net = mlp(&rng)
        case .cnn: net = cnn(&rng)
        case .vgg: net = vgg(&rng)
        case .resnet: net = resnet(&rng)
        }
        net.skipInputGradient = true
        return net
    }

    private func convBNReLU(_ cin: Int, _ cout: Int, stride: Int = 1, _ name: String, _ rng: inout SplitMix64) -> [Layer] {
        [Conv2D(cin, cout, kernel: 3, stride: stride, rng: &rng, name: name + ".conv"), BatchNorm(cout, fusedReLU: true, name: name + ".bn")]
    }

    private func mlp(_ rng: inout SplitMix64) -> Sequential {
        let h1 = width, h2 = max(width / 2, 1)
        return Sequential([
            Flatten(),
            Dense(inputSize * inputSize, h1, rng: &rng, name: "fc1"), ReLU(), Dropout(dropout, seed: 1),
            Dense(h1, h2, rng: &rng, name: "fc2"), ReLU(), Dropout(dropout, seed: 2),
            Dense(h2, classes, rng: &rng, name: "fc3"),
        ])
    }

    private func cnn(_ rng: inout SplitMix64) -> Sequential {
        var layers: [Layer] = []
        var cin = 1
        for (s, c) in [width, width * 2, width * 4].enumerated() {
            layers += convBNReLU(cin, c, "s\(s + 1).0", &rng)
            layers += convBNReLU(c, c, "s\(s + 1).1", &rng)
            layers.append(Pool2D.maxPool(2))
            cin = c
        }
        layers += [Pool2D.globalAverage(), Dropout(dropout, seed: 1), Dense(cin, classes, rng: &rng, name: "fc")]
        return Sequential(layers)
    }

    private func vgg(_ rng: inout SplitMix64) -> Sequential {
        var layers: [Layer] = []
        var cin = 1, side = inputSize
        for (s, c) in [width, width * 2, width * 4, width * 8].enumerated() {
            layers += convBNReLU(cin, c, "s\(s + 1).0", &rng)
            layers += convBNReLU(c, c, "s\(s + 1).1", &rng)
            layers.append(Pool2D.maxPool(2))
            cin = c
            side /= 2
        }
        let fc = fcWidth > 0 ? fcWidth : width * 64
        layers += [
            Dense(cin * side * side, fc, rng: &rng, name: "fc1"), ReLU(), Dropout(dropout, seed: 1),
            Dense(fc, fc, rng: &rng, name: "fc2"), ReLU(), Dropout(dropout, seed: 2),
            Dense(fc, classes, rng: &rng, name: "fc3"),
        ]
        return Sequential(layers)
    }

    private func basicBlock(_ cin: Int, _ cout: Int, stride: Int, _ name: String, _ rng: inout SplitMix64) -> [Layer] {
        let body = Sequential([
            Conv2D(cin, cout, kernel: 3, stride: stride, rng: &rng, name: name + ".conv1"), BatchNorm(cout, fusedReLU: true, name: name + ".bn1"),
            Conv2D(cout, cout, kernel: 3, rng: &rng, name: name + ".conv2"), BatchNorm(cout, name: name + ".bn2"),
        ])
        let shortcut: Layer? = (cin == cout && stride == 1) ? nil : Sequential([
            Conv2D(cin, cout, kernel: 1, stride: stride, padding: 0, rng: &rng, name: name + ".down"), BatchNorm(cout, name: name + ".down_bn"),
        ])
        return [Residual(body, shortcut: shortcut), ReLU()]
    }

    private func resnet(_ rng: inout SplitMix64) -> Sequential {
        var layers = convBNReLU(1, width, "stem", &rng)
        var cin = width
        for (s, c) in [width, width * 2, width * 4, width * 8].enumerated() {
            layers += basicBlock(cin, c, stride: s == 0 ? 1 : 2, "s\(s + 1).0", &rng)
            layers += basicBlock(c, c, stride: 1, "s\(s + 1).1", &rng)
            cin = c
        }
        layers += [Pool2D.globalAverage(), Dropout(dropout, seed: 1), Dense(cin, classes, rng: &rng, name: "fc")]
        return Sequential(layers)
    }
}
