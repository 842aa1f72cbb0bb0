import Support

// The parts of parquet.thrift (the format's public schema) this reader uses, decoded from the compact protocol.
// Field numbers are parquet.thrift's; fields not listed are skipped.

/// Parquet's physical types (`Type` in parquet.thrift).
enum PhysicalType: Int {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLengthByteArray = 7

    var name: String {
        switch self {
        case .boolean: return "BOOLEAN"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .int96: return "INT96"
        case .float: return "FLOAT"
        case .double: return "DOUBLE"
        case .byteArray: return "BYTE_ARRAY"
        case .fixedLengthByteArray: return "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

/// Page compression (`CompressionCodec`).
enum Codec: Int {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7

    var name: String { ["UNCOMPRESSED", "SNAPPY", "GZIP", "LZO", "BROTLI", "LZ4", "ZSTD", "LZ4_RAW"][rawValue] }
}

/// Value and level encodings (`Encoding`).
enum Encoding: Int {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5, deltaLengthByteArray = 6,
         deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9, adaptiveLosslessFloatingPoint = 10

    static func name(_ raw: Int) -> String {
        let names = [0: "PLAIN", 2: "PLAIN_DICTIONARY", 3: "RLE", 4: "BIT_PACKED", 5: "DELTA_BINARY_PACKED",
                     6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 8: "RLE_DICTIONARY", 9: "BYTE_STREAM_SPLIT", 10: "ALP"]
        return names[raw] ?? "encoding \(raw)"
    }
}

/// What a schema element's annotations (ConvertedType and LogicalType) say its values mean, as far as this reader
/// cares: text, unsigned integers, decimals, or something it cannot turn into numbers.
enum Annotation: Equatable {
    case none
    case text
    case unsigned
    case decimal(scale: Int)
    /// A type kept as its stored numbers (dates, times, timestamps: days or units since the epoch).
    case temporal
    /// A nested or special type (LIST, MAP, FLOAT16, UUID, ...), named for the message.
    case unsupported(String)
}

/// One node of the schema (`SchemaElement`).
struct SchemaElement {
    var name = ""
    var type: Int?
    var repetition: Int?
    var childCount: Int?
    var convertedType: Int?
    var scale: Int?
    var logical: Annotation?

    static let required = 0, optional = 1, repeated = 2

    /// The annotation of the converted type (the older field; LogicalType wins when both are given).
    var annotation: Annotation {
        if let logical { return logical }
        switch convertedType {
        case nil: return .none
        case 0?, 4?, 19?: return .text                               // UTF8, ENUM, JSON
        case 5?: return .decimal(scale: scale ?? 0)                   // DECIMAL
        case 6?, 7?, 8?, 9?, 10?: return .temporal                    // DATE, TIME_*, TIMESTAMP_*
        case 11?, 12?, 13?, 14?: return .unsigned                     // UINT_8 ... UINT_64
        case 15?, 16?, 17?, 18?: return .none                         // INT_8 ... INT_64
        case 1?, 2?: return .unsupported("MAP")
        case 3?: return .unsupported("LIST")
        case let other?: return .unsupported("converted type \(other)")
        }
    }
}

/// One column's chunk in a row group (`ColumnChunk` with its `ColumnMetaData`).
struct ColumnChunkMetadata {
    var type = -1
    var codec = -1
    var valueCount = -1
    var compressedSize = -1
    var dataPageOffset = -1
    var dictionaryPageOffset: Int?
    /// Nulls in the chunk, when its statistics say.
    var nullCount: Int?
    var path: [String] = []
    /// Set when the chunk lives in another file (a feature of the format no common writer uses).
    var filePath: String?
    var hasMetadata = false
}

/// One row group (`RowGroup`).
struct RowGroupMetadata {
    var columns: [ColumnChunkMetadata] = []
    var rowCount = -1
}

/// The footer (`FileMetaData`).
struct FileMetadata {
    var schema: [SchemaElement] = []
    var rowCount = -1
    var rowGroups: [RowGroupMetadata] = []
    var createdBy: String?

    /// Decodes the footer's bytes; a missing required field is a `UserError` naming it.
    static func decode(_ bytes: UnsafeRawBufferPointer, what: String) throws -> FileMetadata {
        var reader = ThriftReader(bytes, what: what)
        var metadata = FileMetadata()
        var sawSchema = false, sawRowGroups = false
        try reader.structure { reader, id, type in
            switch id {
            case 2:
                sawSchema = true
                try reader.list(type) { reader, element in metadata.schema.append(try SchemaElement.decode(&reader, element)) }
            case 3: metadata.rowCount = try reader.integer(type)
            case 4:
                sawRowGroups = true
                try reader.list(type) { reader, element in metadata.rowGroups.append(try RowGroupMetadata.decode(&reader, element)) }
            case 6: metadata.createdBy = try reader.string(type)
            case 8: throw reader.corrupt("encrypted columns are not supported")
            default: try reader.skip(type)
            }
        }
        guard sawSchema, sawRowGroups, metadata.rowCount >= 0 else {
            throw reader.corrupt("the footer lacks its schema, row groups or row count")
        }
        return metadata
    }
}

extension SchemaElement {
    static func decode(_ reader: inout ThriftReader, _ type: ThriftType) throws -> SchemaElement {
        var element = SchemaElement()
        var sawName = false
        try reader.structure(type) { reader, id, type in
            switch id {
            case 1: element.type = try reader.integer(type)
            case 3: element.repetition = try reader.integer(type)
            case 4:
                element.name = try reader.string(type)
                sawName = true
            case 5: element.childCount = try reader.integer(type)
            case 6: element.convertedType = try reader.integer(type)
            case 7: element.scale = try reader.integer(type)
            case 10: element.logical = try decodeLogicalType(&reader, type)
            default: try reader.skip(type)
            }
        }
        guard sawName else { throw reader.corrupt("a schema element without a name") }
        return element
    }

    /// The `LogicalType` union: which member is set says what the values mean.
    private static func decodeLogicalType(_ reader: inout ThriftReader, _ type: ThriftType) throws -> Annotation {
        var annotation = Annotation.none
        try reader.structure(type) { reader, id, type in
            switch id {
            case 1, 4, 12: annotation = .text                         // STRING, ENUM, JSON
            case 5:                                                   // DECIMAL {1: scale, 2: precision}
                var scale = 0
                try reader.structure(type) { reader, id, type in
                    if id == 1 { scale = try reader.integer(type) } else { try reader.skip(type) }
                }
                annotation = .decimal(scale: scale)
                return
            case 6, 7, 8: annotation = .temporal                      // DATE, TIME, TIMESTAMP
            case 10:                                                  // INTEGER {1: bitWidth, 2: isSigned}
                var signed = true
                try reader.structure(type) { reader, id, type in
                    if id == 2 { signed = try reader.boolean(type) } else { try reader.skip(type) }
                }
                annotation = signed ? .none : .unsigned
                return
            case 2: annotation = .unsupported("MAP")
            case 3: annotation = .unsupported("LIST")
            case 11: annotation = .none                               // UNKNOWN: only nulls
            case 13: annotation = .unsupported("BSON")
            case 14: annotation = .unsupported("UUID")
            case 15: annotation = .unsupported("FLOAT16")
            default: annotation = .unsupported("logical type \(id)")
            }
            try reader.skip(type)
        }
        return annotation
    }
}

extension RowGroupMetadata {
    static func decode(_ reader: inout ThriftReader, _ type: ThriftType) throws -> RowGroupMetadata {
        var group = RowGroupMetadata()
        var sawColumns = false
        try reader.structure(type) { reader, id, type in
            switch id {
            case 1:
                sawColumns = true
                try reader.list(type) { reader, element in group.columns.append(try ColumnChunkMetadata.decode(&reader, element)) }
            case 3: group.rowCount = try reader.integer(type)
            default: try reader.skip(type)
            }
        }
        guard sawColumns, group.rowCount >= 0 else { throw reader.corrupt("a row group lacks its columns or row count") }
        return group
    }
}

extension ColumnChunkMetadata {
    static func decode(_ reader: inout ThriftReader, _ type: ThriftType) throws -> ColumnChunkMetadata {
        var chunk = ColumnChunkMetadata()
        try reader.structure(type) { reader, id, type in
            switch id {
            case 1: chunk.filePath = try reader.string(type)
            case 3:
                chunk.hasMetadata = true
                try reader.structure(type) { reader, id, type in
                    switch id {
                    case 1: chunk.type = try reader.integer(type)
                    case 3: try reader.list(type) { reader, element in chunk.path.append(try reader.string(element)) }
                    case 4: chunk.codec = try reader.integer(type)
                    case 5: chunk.valueCount = try reader.integer(type)
                    case 7: chunk.compressedSize = try reader.integer(type)
                    case 9: chunk.dataPageOffset = try reader.integer(type)
                    case 11: chunk.dictionaryPageOffset = try reader.integer(type)
                    case 12:                                 // Statistics {3: null_count}
                        try reader.structure(type) { reader, id, type in
                            if id == 3 { chunk.nullCount = try reader.integer(type) } else { try reader.skip(type) }
                        }
                    default: try reader.skip(type)
                    }
                }
            case 8, 9: throw reader.corrupt("encrypted columns are not supported")
            default: try reader.skip(type)
            }
        }
        guard chunk.hasMetadata, chunk.type >= 0, chunk.codec >= 0, chunk.valueCount >= 0, chunk.compressedSize >= 0,
              chunk.dataPageOffset >= 0 else {
            throw reader.corrupt("a column chunk lacks its metadata (type, codec, sizes or offsets)")
        }
        return chunk
    }
}

/// A page's header (`PageHeader` with the header of its kind).
struct PageHeader {
    static let dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3

    var type = -1
    var uncompressedSize = -1
    var compressedSize = -1
    /// Slots (values and nulls) in a data page; entries of a dictionary page.
    var valueCount = -1
    var encoding = -1
    /// Data page v1: the definition levels' encoding (RLE or the old BIT_PACKED).
    var definitionEncoding = Encoding.rle.rawValue
    /// Data page v2: the byte lengths of the levels (stored uncompressed before the values) and whether the values
    /// are compressed.
    var definitionLength = 0
    var repetitionLength = 0
    var nullCount = 0
    var rowCount = -1
    var isCompressed = true

    /// Decodes the header at `reader`'s position (the page's data follows it).
    static func decode(_ reader: inout ThriftReader) throws -> PageHeader {
        var header = PageHeader()
        try reader.structure { reader, id, type in
            switch id {
            case 1: header.type = try reader.integer(type)
            case 2: header.uncompressedSize = try reader.integer(type)
            case 3: header.compressedSize = try reader.integer(type)
            case 5:                                                  // DataPageHeader
                try reader.structure(type) { reader, id, type in
                    switch id {
                    case 1: header.valueCount = try reader.integer(type)
                    case 2: header.encoding = try reader.integer(type)
                    case 3: header.definitionEncoding = try reader.integer(type)
                    default: try reader.skip(type)
                    }
                }
            case 7:                                                  // DictionaryPageHeader
                try reader.structure(type) { reader, id, type in
                    switch id {
                    case 1: header.valueCount = try reader.integer(type)
                    case 2: header.encoding = try reader.integer(type)
                    default: try reader.skip(type)
                    }
                }
            case 8:                                                  // DataPageHeaderV2
                try reader.structure(type) { reader, id, type in
                    switch id {
                    case 1: header.valueCount = try reader.integer(type)
                    case 2: header.nullCount = try reader.integer(type)
                    case 3: header.rowCount = try reader.integer(type)
                    case 4: header.encoding = try reader.integer(type)
                    case 5: header.definitionLength = try reader.integer(type)
                    case 6: header.repetitionLength = try reader.integer(type)
                    case 7: header.isCompressed = try reader.boolean(type)
                    default: try reader.skip(type)
                    }
                }
            default: try reader.skip(type)
            }
        }
        guard header.type >= 0, header.uncompressedSize >= 0, header.compressedSize >= 0 else {
            throw reader.corrupt("a page header lacks its type or sizes")
        }
        return header
    }
}
