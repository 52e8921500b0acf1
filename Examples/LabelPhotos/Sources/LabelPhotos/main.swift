import FER
import Foundation

// Labels the faces in every photo of a folder: swift run LabelPhotos ~/Pictures
let folder = CommandLine.arguments.dropFirst().first ?? "."
do {
    let recognizer = try ExpressionRecognizer()  // the bundled default model and face detector
    let photos = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        .filter { ["jpg", "jpeg", "png", "bmp", "webp"].contains(($0 as NSString).pathExtension.lowercased()) }
    for name in photos {
        do {
            let faces = try recognizer.faces(inPhotoAt: (folder as NSString).appendingPathComponent(name))
            let labels = faces.map { "\($0.emotion) \(Int(($0.confidence * 100).rounded()))% at (\($0.box.x), \($0.box.y))" }
            print("\(name): \(labels.isEmpty ? "no face found" : labels.joined(separator: "; "))")
        } catch {
            print("\(name): \(error)")
        }
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
