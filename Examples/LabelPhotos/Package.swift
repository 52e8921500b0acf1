// swift-tools-version:6.2
import PackageDescription

// An app that depends on swift-fer (here by path; elsewhere by URL:
// .package(url: "https://github.com/OWNER/swift-fer", from: "1.0.0")).
let package = Package(
    name: "LabelPhotos",
    dependencies: [.package(path: "../..")],
    targets: [.executableTarget(name: "LabelPhotos", dependencies: [.product(name: "FER", package: "swift-fer")])]
)
