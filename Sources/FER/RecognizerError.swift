
/// Why a recognizer cannot be made or cannot read its input, in words a user can act on.
public enum RecognizerError: Error, CustomStringConvertible, Equatable {
    /// No bundled models beside the executable or in a checkout.
    case bundleMissing
    case unknownModel(String, bundled: [String])
    case badPixels(String)
    case badConfiguration(String)

    public var description: String {
        switch self {
        case .bundleMissing:
            return "the bundled models were not found: keep the *_FERBundledModels.resources folder beside the executable, or name a model file"
        case .unknownModel(let name, let bundled):
            return "\(name): no such file, and no bundled model of that name (bundled: \(bundled.joined(separator: ", ")))"
        case .badPixels(let why), .badConfiguration(let why):
            return why
        }
    }
}
