/// ONNX: ONNX graphs of the inference path: a builder of nodes and initializers and the ModelProto encoding.

/// The element types of ONNX tensors this exporter writes (TensorProto.DataType's numbers).
public enum ONNXElementType: Int64, Sendable {
    case float = 1
    case int64 = 7
    case string = 8
    case bool = 9
    case double = 11
}

/// One dimension of a graph input's or output's shape: a fixed size or a named symbolic one (the batch, `N`).
public enum ONNXDimension: Equatable, Sendable {
    case size(Int)
    case named(String)
}

/// A node attribute's value (AttributeProto: one of its typed fields).
public enum ONNXAttribute: Sendable {
    case int(Int)
    case float(Float)
    case string(String)
    case ints([Int])
    case floats([Float])
    case strings([String])
    case tensor(ONNXTensor)
}

/// A constant tensor: its dims, element type and values (only the array of its type is used).
public struct ONNXTensor: Sendable {
    var name: String
    let type: ONNXElementType
    let dims: [Int]
    let floats: [Float]
    let doubles: [Double]
    let int64s: [Int64]
    let strings: [String]

    /// Float32 values of shape `dims` (row-major).
    public static func floats(_ values: [Float], dims: [Int]) -> ONNXTensor {
        ONNXTensor(name: "", type: .float, dims: dims, floats: values, doubles: [], int64s: [], strings: [])
    }

    /// Float64 values of shape `dims` (row-major).
    public static func doubles(_ values: [Double], dims: [Int]) -> ONNXTensor {
        ONNXTensor(name: "", type: .double, dims: dims, floats: [], doubles: values, int64s: [], strings: [])
    }

    /// Int64 values of shape `dims` (row-major).
    public static func int64s(_ values: [Int], dims: [Int]) -> ONNXTensor {
        ONNXTensor(name: "", type: .int64, dims: dims, floats: [], doubles: [], int64s: values.map(Int64.init), strings: [])
    }

    /// UTF-8 strings of shape `dims` (row-major).
    public static func strings(_ values: [String], dims: [Int]) -> ONNXTensor {
        ONNXTensor(name: "", type: .string, dims: dims, floats: [], doubles: [], int64s: [], strings: values)
    }
}

/// A graph input or output: its name, element type and shape.
struct ONNXValueInfo {
    let name: String
    let type: ONNXElementType
    let shape: [ONNXDimension]
}

/// One operator application (NodeProto).
struct ONNXNode {
    let opType: String
    let domain: String
    let inputs: [String]
    let outputs: [String]
    let attributes: [(name: String, value: ONNXAttribute)]
}

/// An ONNX graph under construction: inputs, constant initializers and nodes added in topological order, then
/// outputs; `modelBytes` serializes it as a ModelProto. Value names the builder makes never clash with the inputs'
/// and outputs' names, which are the caller's (column names, say).
public struct ONNXGraph {
    /// The ML domain's name (LabelEncoder and the other string operators).
    public static let machineLearningDomain = "ai.onnx.ml"
    /// The default domain's opset the graphs use, and the IR version that goes with it.
    public static let opsetVersion = 17, irVersion = 8
    /// The ML domain's opset that goes with opset 17.
    public static let machineLearningOpsetVersion = 3

    let name: String
    private(set) var inputs: [ONNXValueInfo] = []
    private(set) var outputs: [ONNXValueInfo] = []
    private(set) var initializers: [ONNXTensor] = []
    private(set) var nodes: [ONNXNode] = []
    private var usedNames: Set<String> = []
    private var reservedNames: Set<String>
    private var counter = 0

    /// An empty graph called `name`; `reserving` names the caller will use for outputs later, so none of the
    /// builder's values takes them.
    public init(name: String, reserving reserved: [String] = []) {
        self.name = name
        reservedNames = Set(reserved)
    }

    /// Whether any node uses the ML domain (the model then imports its opset).
    var usesMachineLearningDomain: Bool { nodes.contains { $0.domain == Self.machineLearningDomain } }

    /// A value name not used yet, from `base`.
    private mutating func freshName(_ base: String) -> String {
        var candidate: String
        repeat {
            counter += 1
            candidate = "\(base)_\(counter)"
        } while usedNames.contains(candidate) || reservedNames.contains(candidate)
        usedNames.insert(candidate)
        return candidate
    }

    /// Adds a graph input and returns its name (`name` itself).
    @discardableResult
    public mutating func addInput(_ name: String, type: ONNXElementType, shape: [ONNXDimension]) -> String {
        usedNames.insert(name)
        inputs.append(ONNXValueInfo(name: name, type: type, shape: shape))
        return name
    }

    /// Adds `tensor` as a constant initializer and returns the name it got.
    public mutating func addConstant(_ tensor: ONNXTensor, named base: String = "constant") -> String {
        var named = tensor
        named.name = freshName(base)
        initializers.append(named)
        return named.name
    }

    /// A float32 constant of shape `dims` (a scalar for `[]`).
    public mutating func addConstant(floats values: [Float], dims: [Int], named base: String = "constant") -> String {
        addConstant(.floats(values, dims: dims), named: base)
    }

    /// An int64 constant of shape `dims` (a scalar for `[]`).
    public mutating func addConstant(int64s values: [Int], dims: [Int], named base: String = "constant") -> String {
        addConstant(.int64s(values, dims: dims), named: base)
    }

    /// Applies `opType` to `inputs` and returns its outputs' names (`outputCount` of them).
    public mutating func addNode(_ opType: String, _ inputs: [String], attributes: [(name: String, value: ONNXAttribute)] = [],
                                 domain: String = "", outputCount: Int) -> [String] {
        let outputs = (0..<outputCount).map { _ in freshName(opType) }
        nodes.append(ONNXNode(opType: opType, domain: domain, inputs: inputs, outputs: outputs, attributes: attributes))
        return outputs
    }

    /// Applies `opType` to `inputs` and returns the name of its one output.
    public mutating func addNode(_ opType: String, _ inputs: String..., attributes: [(name: String, value: ONNXAttribute)] = [],
                                 domain: String = "") -> String {
        addNode(opType, inputs, attributes: attributes, domain: domain, outputCount: 1)[0]
    }

    /// Makes the value `value` a graph output called `name` (through an Identity node, so the name is the caller's).
    public mutating func addOutput(_ value: String, named name: String, type: ONNXElementType, shape: [ONNXDimension]) {
        reservedNames.remove(name)
        usedNames.insert(name)
        nodes.append(ONNXNode(opType: "Identity", domain: "", inputs: [value], outputs: [name], attributes: []))
        outputs.append(ONNXValueInfo(name: name, type: type, shape: shape))
    }
}
