// swift-tools-version:6.0
import PackageDescription

// The engine's own loops (optimizers, augmentation, CSV parsing) run optimised even in debug
// builds, so `swift test` trains at a useful speed.
let optimize: [SwiftSetting] = [
    .unsafeFlags(["-wmo"], .when(configuration: .release)),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "swift-fer",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "FER", targets: ["FER"]),
        .executable(name: "fer", targets: ["fer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
            cxxSettings: [.unsafeFlags(["-I/usr/include/opencv4", "-O2"])],
            linkerSettings: [
                .linkedLibrary("opencv_core"), .linkedLibrary("opencv_imgproc"), .linkedLibrary("opencv_imgcodecs"),
                .linkedLibrary("opencv_objdetect"), .linkedLibrary("opencv_videoio"), .linkedLibrary("opencv_highgui"),
            ]
        ),
        .target(
            name: "FER",
            dependencies: ["CDNNL", "CZlib", "CVBridge", .product(name: "Logging", package: "swift-log")],
            path: "Sources/FER",
            swiftSettings: optimize
        ),
        .executableTarget(
            name: "fer",
            dependencies: ["FER", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/fer",
            swiftSettings: optimize
        ),
        .testTarget(
            name: "FERTests",
            dependencies: ["FER", "fer"],  // "fer" so the end-to-end tests find the binary built
            path: "Tests/FERTests"
        ),
    ],
    swiftLanguageModes: [.v5],
    cxxLanguageStandard: .cxx17
)
