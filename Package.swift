// swift-tools-version:6.2
import PackageDescription

// Builds on Linux (Debian/Ubuntu: libdnnl-dev, OpenCV 4.6 at /usr/include/opencv4), and declares no
// other platform: a macOS build would need Homebrew's oneDNN and OpenCV and a different header path
// (README, "Platforms").
let package = Package(
    name: "swift-fer",
    products: [
        // The front door for apps: ExpressionRecognizer and the types its answers use.
        .library(name: "FER", targets: ["FER"]),
        .executable(name: "fer", targets: ["fer"]),
    ],
    // `fer serve` (Hummingbird, SwiftNIO) and `fer export OUT.onnx` (swift-protobuf) are most of a
    // clean build's time: scripts/demo builds without them (--disable-default-traits), every other
    // build has them.
    traits: [
        .trait(name: "Server", description: "fer serve: the HTTP/WebSocket server (Hummingbird 2)"),
        .trait(name: "ONNX", description: "fer export OUT.onnx: ONNX graphs (swift-protobuf)"),
        .default(enabledTraits: ["Server", "ONNX"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // fer serve: HTTP and WebSocket server, Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // The server's connection guard works on SwiftNIO's pipeline below Hummingbird.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        // The WebSocket message type the tests match on (hummingbird-websocket's own dependency).
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        // The Logger type of the server's channel handlers (Hummingbird's own dependency).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // fer export OUT.onnx: the ONNX protobuf (generated code committed: tools/generate_onnx_swift.sh).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // Latency percentiles of the server's load test.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // swift package generate-documentation --target FER: the DocC catalog in Sources/FER/FER.docc.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // oneDNN (Debian libdnnl-dev 2.6): every neural-network kernel.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        // zlib: reads the gzip-compressed FER2013 CSV as it is.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // The one bridge to OpenCV 4.6 (C++ behind a C interface): image decode/encode, resize,
        // drawing, face detection (cascades), video files, cameras and a display window.
        .target(
            name: "CVBridge",
            path: "Sources/CVBridge",
            // Debian's OpenCV headers live in /usr/include/opencv4, which only the libopencv-dev
            // meta-package's pkg-config file names (with 30 more packages); a link in the package
            // reaches them through a setting SwiftPM allows in a dependency.
            exclude: ["opencv4"],
            cxxSettings: [.headerSearchPath("opencv4")],
            linkerSettings: [
                .linkedLibrary("opencv_core"), .linkedLibrary("opencv_imgproc"), .linkedLibrary("opencv_imgcodecs"),
                .linkedLibrary("opencv_objdetect"), .linkedLibrary("opencv_videoio"), .linkedLibrary("opencv_highgui"),
            ]
        ),
        // The library, lower to higher; each target may import only those below it, and the compiler
        // holds it to that (MLX-Swift's MLX / MLXNN / MLXOptimizers split is the model).
        // Tensors, oneDNN primitives, layers (forward/backward pairs), the loss, the RNG.
        .target(name: "FEREngine", dependencies: ["CDNNL"]),
        // SGD, Adam, AdamW, gradient clipping, learning-rate schedules.
        .target(name: "FEROptimizers", dependencies: ["FEREngine"]),
        // Files: safetensors, atomic writes, gzip, image decode/encode/draw (OpenCV), progress bars, input errors.
        .target(name: "FERIO", dependencies: ["CZlib", "CVBridge"]),
        // FER2013 (CSV, .gz, image folders), FER+ labels, augmentation, batches.
        .target(name: "FERData", dependencies: ["FEREngine", "FERIO"]),
        // Presets, the classifier, checkpoints and model cards, training recipes.
        .target(name: "FERModels", dependencies: ["FEREngine", "FEROptimizers", "FERIO", "FERData"]),
        // Classification reports, confusion matrices, training curves.
        .target(name: "FEREvaluation", dependencies: ["FERIO"]),
        // Open MPI, loaded at run time only under mpirun/srun (so nothing else needs MPI).
        .target(name: "CMPI", path: "Sources/CMPI", linkerSettings: [.linkedLibrary("dl")]),
        // The ranks of a data-parallel job: allreduce, agreement checks; a single rank without MPI.
        .target(name: "FERDistributed", dependencies: ["CMPI"]),
        // The trainer (epochs, validation, checkpoints, resume, data-parallel ranks), training step, benchmark.
        .target(name: "FERTraining", dependencies: ["FEREngine", "FEROptimizers", "FERIO", "FERData", "FERModels", "FEREvaluation",
                                                    "FERDistributed"]),
        // Faces in photos, videos and cameras: detectors, crop framing, analyzer, tracker, photo-set evaluation.
        .target(name: "FERVision", dependencies: ["FEREngine", "FERIO", "FERData", "FERModels", "FEREvaluation", "CVBridge"]),
        // The bundled models (models/<name>/) as SwiftPM resources, so that a package depending on
        // swift-fer finds them too; new bundled models are added to this list.
        .target(name: "FERBundledModels", path: "models",
                resources: [.copy("default"), .copy("fast"), .copy("fer2013"), .copy("mtcnn")]),
        // The front door: one type that loads a model, builds the detector and labels faces; the
        // bundled names and the precision policy live here once, for apps, the CLI and the server.
        .target(name: "FER", dependencies: ["FEREngine", "FERIO", "FERData", "FERModels", "FERVision", "FERBundledModels"]),
        // fer serve: the HTTP API, the WebSocket stream and the web page, with limits, a bounded work
        // queue that batches faces across requests, and Prometheus metrics; an app of FER like any other.
        .target(name: "FERServing", dependencies: ["FER", "FERIO", "FERModels", "FERVision",
                                                   .product(name: "Hummingbird", package: "hummingbird"),
                                                   .product(name: "HummingbirdCore", package: "hummingbird"),
                                                   .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                                                   .product(name: "Prometheus", package: "swift-prometheus"),
                                                   .product(name: "NIOCore", package: "swift-nio"),
                                                   .product(name: "NIOHTTP1", package: "swift-nio"),
                                                   .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                   .product(name: "Logging", package: "swift-log")]),
        // fer export OUT.onnx: a classifier as an ONNX graph.
        .target(name: "FERExport", dependencies: ["FEREngine", "FERModels", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["proto"]),
        .executableTarget(
            name: "fer",
            dependencies: [
                "FER", "FEREngine", "FEROptimizers", "FERIO", "FERData", "FERModels", "FEREvaluation", "FERTraining", "FERVision", "FERDistributed",
                .target(name: "FERServing", condition: .when(traits: ["Server"])),
                .target(name: "FERExport", condition: .when(traits: ["ONNX"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/fer"
        ),
        .testTarget(
            name: "FERTests",
            dependencies: ["FER", "FEREngine", "FEROptimizers", "FERIO", "FERData", "FERModels", "FEREvaluation", "FERTraining", "FERVision",
                           "FERDistributed", "FERServing", "FERExport", "fer",
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                           .product(name: "WSCore", package: "swift-websocket"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "Histogram", package: "hdrhistogram-swift")],  // "fer" so the end-to-end tests find the binary built
            path: "Tests/FERTests",
            exclude: ["Reference"]  // PyTorch dumps the tests read by path, and the script that made them
        ),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)

// Each file sees only the modules it imports, members of extensions included (SE-0444): an import
// not used, or one missing and borrowed from another file, shows at compile time.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
