import Foundation
import FEREngine
import FERModels
import SwiftProtobuf

/// A trained classifier as an ONNX model (opset 13), for other runtimes (ONNX Runtime, OpenCV DNN,
/// TensorRT...). The graph takes what `fer` feeds its network before the crop, so a user only
/// resizes and scales:
///
///     input  "face"          float [N, 1, 48, 48]: the gray face, resized to 48x48, x / 255
///            (Slice: the centre inputSize x inputSize crop, when the model was trained on crops)
///            ... one node group per layer: Conv, BatchNormalization (+ Relu), MaxPool,
///                GlobalAveragePool, Flatten, Gemm, Relu, PRelu, Add (residual blocks) ...
///     output "logits"        float [N, classes]
///     output "probabilities" float [N, classes]  (Softmax over the classes, of logits / T when the card has a temperature)
///
/// `metadata_props` carries the class names, the preprocessing and the model card.
public enum ONNXExport {
    public static let opset: Int64 = 13

    public struct UnsupportedLayer: Error, CustomStringConvertible {
        public let summary: String
        public var description: String { "cannot export \(summary) to ONNX" }
    }

    /// The serialized model.
    public static func model(_ classifier: Classifier, card: ModelCard) throws -> Data {
        var builder = GraphBuilder()
        let side = classifier.sourceSide, size = classifier.spec.inputSize
        var x = "face"
        if size < side {
            let m = Int64((side - size) / 2)
            x = builder.node("Slice", [x, builder.int64Tensor("crop.starts", [m, m]), builder.int64Tensor("crop.ends", [m + Int64(size), m + Int64(size)]),
                                       builder.int64Tensor("crop.axes", [2, 3])], name: "crop")
        }
        var shape = [1, 1, size, size]
        x = try builder.add(classifier.network, x, &shape)
        x = builder.flattened(x, shape)
        builder.nodes.append(node("Identity", [x], ["logits"], name: "logits"))
        var scores = "logits"
        if classifier.temperature != 1 {  // the calibrated temperature divides the logits before the softmax, as in fer
            var inverse = [1 / classifier.temperature]
            let t = inverse.withUnsafeMutableBufferPointer { builder.tensor("temperature.inverse", [], $0) }
            scores = builder.node("Mul", ["logits", t], name: "calibrated")
        }
        builder.nodes.append(node("Softmax", [scores], ["probabilities"], name: "softmax", attributes: [Attr.int("axis", 1)]))

        var graph = Onnx_GraphProto()
        graph.name = "swift-fer \(classifier.spec.preset.rawValue)"
        graph.node = builder.nodes
        graph.initializer = builder.initializers
        graph.input = [valueInfo("face", [1, Int64(side), Int64(side)])]
        let k = Int64(classifier.spec.classes)
        graph.output = [valueInfo("logits", [k]), valueInfo("probabilities", [k])]

        var model = Onnx_ModelProto()
        model.irVersion = 7
        model.producerName = "swift-fer"
        model.producerVersion = "1"
        model.domain = "swift-fer"
        model.modelVersion = 1
        model.docString = "Facial expression recognition (\(classifier.classNames.joined(separator: ", "))), exported by fer export."
        var opsetID = Onnx_OperatorSetIdProto()
        opsetID.domain = ""
        opsetID.version = opset
        model.opsetImport = [opsetID]
        model.graph = graph
        let cardJSON = String(decoding: (try? JSONEncoder().encode(card)) ?? Data(), as: UTF8.self)
        model.metadataProps = [
            ("classes", classifier.classNames.joined(separator: ",")),
            ("input", "face: float [N, 1, \(side), \(side)], the face in gray, resized to \(side)x\(side), divided by 255"),
            ("preprocessing", card.preprocessing),
            ("outputs", "logits [N, \(k)]; probabilities [N, \(k)] (softmax), in the order of classes"),
            ("swift-fer", cardJSON),
        ].map { key, value in
            var e = Onnx_StringStringEntryProto()
            e.key = key
            e.value = value
            return e
        }
        return try model.serializedData()
    }

    /// Nodes and initializers as the layers are walked; names are unique by a running number.
    struct GraphBuilder {
        var nodes: [Onnx_NodeProto] = []
        var initializers: [Onnx_TensorProto] = []
        var counter = 0

        mutating func fresh(_ base: String) -> String {
            counter += 1
            return "\(base)_\(counter)"
        }

        /// Adds a node with one output and returns the output's name.
        mutating func node(_ op: String, _ inputs: [String], name: String, attributes: [Onnx_AttributeProto] = []) -> String {
            let out = fresh(name)
            nodes.append(FERExport.node(op, inputs, [out], name: out, attributes: attributes))
            return out
        }

        /// `x` as [N, features]: a Flatten node unless it is 2-D already.
        mutating func flattened(_ x: String, _ shape: [Int]) -> String {
            shape.count == 2 ? x : node("Flatten", [x], name: "flatten", attributes: [Attr.int("axis", 1)])
        }

        mutating func tensor(_ name: String, _ dims: [Int], _ values: UnsafeMutableBufferPointer<Float>) -> String {
            var t = Onnx_TensorProto()
            t.name = name
            t.dims = dims.map(Int64.init)
            t.dataType = 1  // FLOAT
            t.rawData = Data(buffer: values)  // little-endian float32, as ONNX's raw_data
            initializers.append(t)
            return name
        }

        mutating func int64Tensor(_ name: String, _ values: [Int64]) -> String {
            var t = Onnx_TensorProto()
            t.name = name
            t.dims = [Int64(values.count)]
            t.dataType = 7  // INT64
            t.int64Data = values
            initializers.append(t)
            return name
        }

        /// The nodes of `layer` applied to `x` (of `shape`, updated to the output's).
        mutating func add(_ layer: Layer, _ x: String, _ shape: inout [Int]) throws -> String {
            let outShape = layer.outputShape(shape)
            defer { shape = outShape }
            switch layer {
            case let s as Sequential:
                var y = x
                var sh = shape
                for l in s.layers { y = try add(l, y, &sh) }
                return y
            case let c as Conv2D:
                let p = Int64(c.padding), st = Int64(c.stride), k = Int64(c.kernel)
                return node("Conv", [x, tensor(c.weight.name, c.weight.value.shape, c.weight.values), tensor(c.bias.name, c.bias.value.shape, c.bias.values)],
                            name: "conv", attributes: [Attr.ints("kernel_shape", [k, k]), Attr.ints("strides", [st, st]), Attr.ints("pads", [p, p, p, p])])
            case let b as BatchNorm:
                let y = node("BatchNormalization", [x, tensor(b.scale.name, [b.channels], b.scale.values), tensor(b.shift.name, [b.channels], b.shift.values),
                                                    tensor(b.runningMean.name, [b.channels], b.runningMean.values),
                                                    tensor(b.runningVariance.name, [b.channels], b.runningVariance.values)],
                             name: "bn", attributes: [Attr.float("epsilon", b.epsilon)])
                return b.fusedReLU ? node("Relu", [y], name: "relu") : y
            case is ReLU:
                return node("Relu", [x], name: "relu")
            case let p as PReLU:
                // Slopes as [C, 1, 1] (or [C]) so they broadcast over [N, C, H, W].
                let dims = [p.channels] + Array(repeating: 1, count: max(0, shape.count - 2))
                return node("PRelu", [x, tensor(p.weight.name, dims, p.weight.values)], name: "prelu")
            case let p as Pool2D:
                if p.global { return node("GlobalAveragePool", [x], name: "gap") }
                let k = Int64(p.kernel), st = Int64(p.stride), pad = Int64(p.padding)
                var attributes = [Attr.ints("kernel_shape", [k, k]), Attr.ints("strides", [st, st]), Attr.ints("pads", [pad, pad, pad, pad]),
                                  Attr.int("ceil_mode", p.ceilMode ? 1 : 0)]
                if p.kind == .average { attributes.append(Attr.int("count_include_pad", 0)) }  // oneDNN avg_exclude_padding
                return node(p.kind == .max ? "MaxPool" : "AveragePool", [x], name: p.kind == .max ? "maxpool" : "avgpool", attributes: attributes)
            case is Dropout:
                return x  // inference: identity
            case is Flatten:
                return flattened(x, shape)
            case let d as Dense:
                // A dense layer reads a 4-D input as its NCHW flattening, as PyTorch's Linear after flatten.
                return node("Gemm", [flattened(x, shape), tensor(d.weight.name, d.weight.value.shape, d.weight.values), tensor(d.bias.name, d.bias.value.shape, d.bias.values)],
                            name: "fc", attributes: [Attr.int("transB", 1)])
            case let r as Residual:
                var bodyShape = shape, shortShape = shape
                let body = try add(r.body, x, &bodyShape)
                let shortcut = try r.shortcut.map { try add($0, x, &shortShape) } ?? x
                return node("Add", [body, shortcut], name: "add")
            default:
                throw UnsupportedLayer(summary: layer.summary)
            }
        }
    }
}

func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String, attributes: [Onnx_AttributeProto] = []) -> Onnx_NodeProto {
    var n = Onnx_NodeProto()
    n.opType = op
    n.input = inputs
    n.output = outputs
    n.name = name
    n.attribute = attributes
    return n
}

/// Node attributes.
enum Attr {
    static func int(_ name: String, _ value: Int64) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = value
        return a
    }

    static func ints(_ name: String, _ values: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values
        return a
    }

    static func float(_ name: String, _ value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }
}

/// A graph input or output: float, a batch dimension named N, then `dims`.
func valueInfo(_ name: String, _ dims: [Int64]) -> Onnx_ValueInfoProto {
    var batch = Onnx_TensorShapeProto.Dimension()
    batch.dimParam = "N"
    var shape = Onnx_TensorShapeProto()
    shape.dim = [batch] + dims.map { d in
        var dim = Onnx_TensorShapeProto.Dimension()
        dim.dimValue = d
        return dim
    }
    var tensor = Onnx_TypeProto.Tensor()
    tensor.elemType = 1  // FLOAT
    tensor.shape = shape
    var type = Onnx_TypeProto()
    type.tensorType = tensor
    var v = Onnx_ValueInfoProto()
    v.name = name
    v.type = type
    return v
}
