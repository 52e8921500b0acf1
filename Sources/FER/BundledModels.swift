import FERBundledModels
import Foundation

/// The models that ship with swift-fer, by name: `default` (for real photos: FER2013 faces with
/// FER+ votes and labelled web photos), `fast` (for live cameras on slow machines), `fer2013` (the
/// best on FER2013's own labels and test split), and MTCNN's face detector. A model argument anywhere (`--model`, `--init-from`,
/// `--teacher`, `ExpressionRecognizer(model:)`) is a file path or one of these names.
public enum BundledModels {
    /// The folder holding them; see `BundledModelFiles`.
    public static var directory: String? { BundledModelFiles.directory }

    /// The environment variable that replaces the default model with a file.
    public static let defaultModelVariable = "FER_MODEL"

    /// The model used when none is named: `FER_MODEL` if set, else the bundled `default`.
    public static var defaultModel: String {
        get throws { try ProcessInfo.processInfo.environment[defaultModelVariable] ?? path(named: "default") }
    }

    /// How to name the model an argument picks, for people: the argument, else `FER_MODEL`'s file,
    /// else "default".
    public static func displayName(_ argument: String?) -> String {
        argument ?? ProcessInfo.processInfo.environment[defaultModelVariable] ?? "default"
    }

    /// `<directory>/<name>/model.safetensors`.
    public static func path(named name: String) throws -> String {
        guard let dir = directory else {
            throw RecognizerError.bundleMissing
        }
        let file = (dir as NSString).appendingPathComponent("\(name)/model.safetensors")
        guard FileManager.default.fileExists(atPath: file) else {
            throw RecognizerError.unknownModel(name, bundled: names)
        }
        return file
    }

    /// A model argument: nil is the default model, an existing file is itself, and a bare name such
    /// as `fast` is that bundled model. The one place a model argument is resolved: anything else (a
    /// missing file, an unknown name) is `RecognizerError.unknownModel`, never passed on as it is.
    public static func resolve(_ argument: String?) throws -> String {
        guard let a = argument else { return try defaultModel }
        if FileManager.default.fileExists(atPath: a) { return a }
        if a.contains("/") || a.hasSuffix(".safetensors") { throw RecognizerError.unknownModel(a, bundled: names) }
        return try path(named: a)
    }

    /// The bundled classifiers' names: the folders that hold a model.safetensors.
    public static var names: [String] {
        guard let dir = directory else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("\($0)/model.safetensors")) }.sorted()
    }

    /// MTCNN's three networks (tools/convert_mtcnn.py).
    public static var mtcnnWeights: String {
        get throws {
            guard let dir = directory else { throw RecognizerError.bundleMissing }
            return (dir as NSString).appendingPathComponent("mtcnn/mtcnn.safetensors")
        }
    }
}
