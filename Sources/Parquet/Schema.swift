import Support

/// One column of a flat Parquet schema: its name, whether it may hold nulls, and what its values are.
public struct ParquetColumn: Equatable {
    /// What a column's values are, from its physical type and annotations.
    enum Kind: Equatable {
        case boolean
        case integer
        case real
        /// BYTE_ARRAY annotated as a string (UTF8, STRING, ENUM or JSON).
        case text
        /// BYTE_ARRAY without a text annotation.
        case bytes
        /// A type this reader does not decode (INT96, FIXED_LEN_BYTE_ARRAY, FLOAT16, ...); reading it is a `UserError`.
        case unsupported
    }

    /// The column's name in the schema.
    public let name: String
    /// Whether the column may hold nulls (OPTIONAL rather than REQUIRED).
    let isOptional: Bool
    /// What its values are.
    let kind: Kind
    /// The type as Parquet names it, for messages: "INT64", "BYTE_ARRAY (string)", "DOUBLE".
    let typeName: String
    /// How its values are stored.
    let physical: PhysicalType
    /// What the stored values mean (a string, a date, an integer width), if the schema says.
    let annotation: Annotation
    /// Why the column cannot be read, if it cannot.
    let unsupported: String?

    /// The flat columns of a schema (its root's children); a nested schema is a `UserError` naming the first
    /// nested column.
    static func flatSchema(_ schema: [SchemaElement], path: String) throws -> [ParquetColumn] {
        guard let root = schema.first, schema.count > 1 else { throw UserError("\(path): the schema has no columns") }
        var columns: [ParquetColumn] = []
        var names = Set<String>()
        for element in schema.dropFirst() {
            let name = quotedForMessage(element.name)
            if (element.childCount ?? 0) > 0 || element.type == nil {
                throw UserError("\(path): column \(name) is a group (a nested schema); Plexus reads flat schemas only "
                    + "(one column per feature or target)")
            }
            guard element.repetition != SchemaElement.repeated else {
                throw UserError("\(path): column \(name) is repeated (a list); Plexus reads flat schemas only")
            }
            guard let physical = PhysicalType(rawValue: element.type!) else {
                throw UserError("\(path): column \(name) has an unknown physical type \(element.type!) (corrupt schema?)")
            }
            guard names.insert(element.name).inserted else { throw UserError("\(path): two columns are named \(name)") }
            columns.append(ParquetColumn(name: element.name, isOptional: element.repetition == SchemaElement.optional,
                                         physical: physical, annotation: element.annotation))
        }
        guard root.childCount == columns.count else {
            throw UserError("\(path): the schema's root has \(root.childCount ?? 0) children but lists \(columns.count) columns (corrupt schema?)")
        }
        return columns
    }

    init(name: String, isOptional: Bool, physical: PhysicalType, annotation: Annotation) {
        self.name = name
        self.isOptional = isOptional
        self.physical = physical
        self.annotation = annotation
        var reason: String?
        switch (physical, annotation) {
        case (_, let .unsupported(what)): reason = "\(physical.name) annotated \(what)"
        case (.int96, _): reason = "INT96 (an old timestamp type)"
        case (.fixedLengthByteArray, _): reason = "FIXED_LEN_BYTE_ARRAY"
        case (.boolean, .none), (.int32, _), (.int64, _), (.float, .none), (.double, .none), (.byteArray, .none), (.byteArray, .text):
            break
        default: reason = "\(physical.name) annotated \(annotation)"
        }
        unsupported = reason
        switch physical {
        case _ where reason != nil: kind = .unsupported
        case .boolean: kind = .boolean
        case .int32, .int64: kind = annotation.isDecimal ? .real : .integer
        case .float, .double: kind = .real
        case .byteArray: kind = annotation == .text ? .text : .bytes
        case .int96, .fixedLengthByteArray: kind = .unsupported
        }
        typeName = physical.name + (annotation == .text ? " (string)" : annotation == .unsigned ? " (unsigned)"
            : annotation.isDecimal ? " (decimal)" : "")
    }

    /// Whether the values are numbers (booleans, integers, reals), not text, bytes or a type this reader lacks.
    public var isNumeric: Bool { kind == .boolean || kind == .integer || kind == .real }

    /// Definition levels go up to this: 1 for an optional column (0 means null), 0 for a required one (none stored).
    var maximumDefinitionLevel: Int { isOptional ? 1 : 0 }

    /// A decimal's unscaled integer in its units (divided by 10^scale); other values as they are.
    func scaled(_ value: Double) -> Double {
        guard case let .decimal(scale) = annotation, scale != 0 else { return value }
        var divisor = 1.0
        for _ in 0..<min(abs(scale), 400) { divisor *= 10 }
        return scale > 0 ? value / divisor : value * divisor
    }
}

extension Annotation {
    var isDecimal: Bool {
        if case .decimal = self { return true }
        return false
    }
}

extension ColumnChunkMetadata {
    /// Where the chunk's first page starts: its dictionary page when it has one.
    var start: Int {
        if let dictionary = dictionaryPageOffset, dictionary > 0, dictionary < dataPageOffset { return dictionary }
        return dataPageOffset
    }

    /// Checks the chunk against its column and the file: same type, a known codec, one value per row, bytes before the
    /// footer (`dataEnd`).
    func check(against column: ParquetColumn, rows: Int, dataEnd: Int, what: String) throws {
        if let filePath { throw UserError("\(what): the chunk is in another file (\(quotedForMessage(filePath))), which is not supported") }
        guard type == column.physical.rawValue else {
            throw UserError("\(what): the chunk's type \(PhysicalType(rawValue: type)?.name ?? String(type)) differs from the schema's \(column.typeName)")
        }
        guard path.isEmpty || path == [column.name] else {
            throw UserError("\(what): the chunk belongs to column \(quotedForMessage(path.joined(separator: ".")))")
        }
        guard Codec(rawValue: codec) != nil else { throw UserError("\(what): unknown compression codec \(codec)") }
        guard valueCount == rows else { throw UserError("\(what): \(valueCount) values in a row group of \(rows) rows") }
        guard start >= 4, start <= dataEnd, compressedSize <= dataEnd - start else {
            throw UserError("\(what): the chunk (\(compressedSize) bytes at byte \(start)) lies outside the file's data (truncated or corrupt)")
        }
    }
}
