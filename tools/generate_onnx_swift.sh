#!/usr/bin/env bash
# Regenerates Sources/FERExport/onnx.pb.swift from Sources/FERExport/proto/onnx.proto with protoc
# (Debian protobuf-compiler) and swift-protobuf's plugin, built once from the same version the
# package uses. The generated file is committed, so neither tool is needed to build swift-fer.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || scripts/setup protobuf-compiler
plugin_dir=.build-protoc-gen-swift
if [ ! -x "$plugin_dir/release/protoc-gen-swift" ]; then
    swift build -c release --package-path .build/checkouts/swift-protobuf --scratch-path "$plugin_dir" --product protoc-gen-swift
fi
protoc --plugin=protoc-gen-swift="$plugin_dir/release/protoc-gen-swift" --swift_opt=Visibility=Internal \
    --swift_out=Sources/FERExport -I Sources/FERExport/proto Sources/FERExport/proto/onnx.proto
echo "wrote Sources/FERExport/onnx.pb.swift"
