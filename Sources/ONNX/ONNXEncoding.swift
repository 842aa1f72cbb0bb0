import Formats

// Field numbers are those of onnx.proto3 (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto, StringStringEntryProto).
extension ONNXGraph {
    /// The graph as a serialized ModelProto (IR version 8, opset 17, plus the ML domain's opset when a node uses it),
    /// naming `producer` and `producerVersion`, with `metadata` as its metadata_props.
    public func modelBytes(producer: String, producerVersion: String, metadata: [String: String] = [:]) -> [UInt8] {
        var model = ProtobufWriter()
        model.varint(1, Int64(Self.irVersion))
        model.string(2, producer)
        model.string(3, producerVersion)
        model.message(7) { encodeGraph(into: &$0) }
        var opsets: [(domain: String, version: Int)] = [("", Self.opsetVersion)]
        if usesMachineLearningDomain { opsets.append((Self.machineLearningDomain, Self.machineLearningOpsetVersion)) }
        for opset in opsets {
            model.message(8) { entry in
                entry.string(1, opset.domain)
                entry.varint(2, Int64(opset.version))
            }
        }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            model.message(14) { entry in
                entry.string(1, key)
                entry.string(2, value)
            }
        }
        return model.bytes
    }

    private func encodeGraph(into graph: inout ProtobufWriter) {
        for node in nodes { graph.message(1) { Self.encode(node, into: &$0) } }
        graph.string(2, name)
        for tensor in initializers { graph.message(5) { Self.encode(tensor, into: &$0) } }
        for input in inputs { graph.message(11) { Self.encode(input, into: &$0) } }
        for output in outputs { graph.message(12) { Self.encode(output, into: &$0) } }
    }

    private static func encode(_ node: ONNXNode, into writer: inout ProtobufWriter) {
        for input in node.inputs { writer.string(1, input) }
        for output in node.outputs { writer.string(2, output) }
        writer.string(3, node.outputs[0])
        writer.string(4, node.opType)
        for (name, value) in node.attributes { writer.message(5) { encode(name, value, into: &$0) } }
        if !node.domain.isEmpty { writer.string(7, node.domain) }
    }

    // AttributeProto: name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, strings 9, type 20 (AttributeType's numbers).
    private static func encode(_ name: String, _ value: ONNXAttribute, into writer: inout ProtobufWriter) {
        writer.string(1, name)
        switch value {
        case let .float(number):
            writer.float(2, number)
            writer.varint(20, 1)
        case let .int(number):
            writer.varint(3, Int64(number))
            writer.varint(20, 2)
        case let .string(text):
            writer.string(4, text)
            writer.varint(20, 3)
        case let .tensor(tensor):
            writer.message(5) { encode(tensor, into: &$0) }
            writer.varint(20, 4)
        case let .floats(numbers):
            writer.packedFloats(7, numbers)
            writer.varint(20, 6)
        case let .ints(numbers):
            writer.packedVarints(8, numbers.map(Int64.init))
            writer.varint(20, 7)
        case let .strings(texts):
            for text in texts { writer.string(9, text) }
            writer.varint(20, 8)
        }
    }

    // TensorProto: dims 1, data_type 2, float_data 4, string_data 6, int64_data 7, name 8, double_data 10.
    private static func encode(_ tensor: ONNXTensor, into writer: inout ProtobufWriter) {
        if !tensor.dims.isEmpty { writer.packedVarints(1, tensor.dims.map(Int64.init)) }
        writer.varint(2, tensor.type.rawValue)
        switch tensor.type {
        case .float: writer.packedFloats(4, tensor.floats)
        case .double: writer.packedDoubles(10, tensor.doubles)
        case .int64: writer.packedVarints(7, tensor.int64s)
        case .bool: writer.packedVarints(5, tensor.int64s)
        case .string: for text in tensor.strings { writer.string(6, text) }
        }
        if !tensor.name.isEmpty { writer.string(8, tensor.name) }
    }

    // ValueInfoProto: name 1, type 2 → TypeProto.tensor_type 1 → elem_type 1, shape 2 → dim 1 → dim_value 1 | dim_param 2.
    private static func encode(_ value: ONNXValueInfo, into writer: inout ProtobufWriter) {
        writer.string(1, value.name)
        writer.message(2) { type in
            type.message(1) { tensorType in
                tensorType.varint(1, value.type.rawValue)
                tensorType.message(2) { shape in
                    for dimension in value.shape {
                        shape.message(1) { entry in
                            switch dimension {
                            case let .size(size): entry.varint(1, Int64(size))
                            case let .named(name): entry.string(2, name)
                            }
                        }
                    }
                }
            }
        }
    }
}
