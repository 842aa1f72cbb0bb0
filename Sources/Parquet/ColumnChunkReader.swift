import Support

/// Reads rows of one column chunk (one column of one row group) page by page: pages before the rows wanted are
/// skipped without being decompressed, pages after them are not read at all.
struct ColumnChunkReader<Storage: ValueStorage> {
    let file: ParquetFile
    let column: ParquetColumn
    let chunk: ColumnChunkMetadata
    /// Rows in the row group (in a flat schema, one slot per row in every column).
    let rowCount: Int
    let group: Int

    private var what: String { "\(file.path): row group \(group), column \(quotedForMessage(column.name))" }

    /// Appends the slots of `rows` (counted from the row group's first row) to `storage`, and for an optional column
    /// whether each is null to `nulls`.
    func read(_ rows: Range<Int>, into storage: inout Storage, nulls: inout [Bool]) throws {
        let bytes = file.file.buffer
        let codec = Codec(rawValue: chunk.codec)!
        let end = chunk.start + chunk.compressedSize
        var position = chunk.start
        var dictionary: ChunkDictionary<Storage>?
        var seen = 0
        while seen < rows.upperBound {
            guard position < end else {
                throw UserError("\(what): the column chunk ends after \(seen) of its \(rowCount) rows (truncated or corrupt)")
            }
            let page = "\(what): page at byte \(position)"
            var reader = ThriftReader(UnsafeRawBufferPointer(rebasing: bytes[..<end]), at: position, what: page)
            let header = try PageHeader.decode(&reader)
            let dataStart = reader.position
            guard header.compressedSize <= end - dataStart else {
                throw UserError("\(page): \(header.compressedSize) bytes run past the end of the column chunk (truncated or corrupt)")
            }
            let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart..<(dataStart + header.compressedSize)])
            position = dataStart + header.compressedSize
            switch header.type {
            case PageHeader.dictionaryPage:
                guard dictionary == nil, seen == 0 else { throw UserError("\(page): a dictionary page after the first page") }
                guard header.encoding == Encoding.plain.rawValue || header.encoding == Encoding.plainDictionary.rawValue else {
                    throw UserError("\(page): a dictionary in \(Encoding.name(header.encoding)), expected PLAIN")
                }
                guard header.valueCount >= 0 else { throw UserError("\(page): a dictionary of \(header.valueCount) values") }
                if let width = Storage.plainWidth {
                    // Numbers are looked up in the page, none decoded (a slab of rows would otherwise decode the
                    // whole dictionary for its few values): where the file maps it, or decompressed once.
                    let (bytes, overflow) = header.valueCount.multipliedReportingOverflow(by: width)
                    guard !overflow else { throw UserError("\(page): \(header.valueCount) values do not fit the page") }
                    if codec == .uncompressed {
                        var cursor = ByteCursor(data, what: page)
                        dictionary = .plain(try cursor.take(bytes), count: header.valueCount)
                    } else {
                        let values = try file.decompressedPage(data, codec: codec, size: header.uncompressedSize, what: page)
                        _ = try values.withUnsafeBytes { raw in
                            var cursor = ByteCursor(raw, what: page)
                            return try cursor.take(bytes)
                        }
                        dictionary = .decompressed(values, count: header.valueCount)
                    }
                } else {
                    dictionary = .decoded(try file.withPage(data, codec: codec, size: header.uncompressedSize, what: page) { raw in
                        var cursor = ByteCursor(raw, what: page)
                        var values = Storage()
                        try values.appendPlain(&cursor, count: header.valueCount)
                        return values
                    })
                }
            case PageHeader.dataPage, PageHeader.dataPageV2:
                let slots = header.valueCount
                guard slots >= 0, slots <= rowCount - seen else {
                    throw UserError("\(page): \(slots) values, but only \(rowCount - seen) of the row group's rows are left")
                }
                if header.type == PageHeader.dataPageV2, header.rowCount != slots {
                    throw UserError("\(page): \(header.rowCount) rows in \(slots) values (a flat column has one value per row)")
                }
                let wanted = (seen..<(seen + slots)).clamped(to: rows)
                if !wanted.isEmpty {
                    try decode(header, data, codec: codec, dictionary: dictionary,
                               window: (wanted.lowerBound - seen)..<(wanted.upperBound - seen), into: &storage, nulls: &nulls, what: page)
                }
                seen += slots
            case PageHeader.indexPage:
                continue
            default:
                throw UserError("\(page): unknown page type \(header.type)")
            }
        }
    }

    /// Decodes slots `window` of a data page: finds its definition levels and values (decompressing what is
    /// compressed), then appends the slots.
    private func decode(_ header: PageHeader, _ data: UnsafeRawBufferPointer, codec: Codec, dictionary: ChunkDictionary<Storage>?,
                        window: Range<Int>, into storage: inout Storage, nulls: inout [Bool], what: String) throws {
        let optional = column.maximumDefinitionLevel > 0
        let key = file.cacheKey(of: data)
        if header.type == PageHeader.dataPage {
            try file.withPage(data, codec: codec, size: header.uncompressedSize, what: what) { page in
                var cursor = ByteCursor(page, what: what)
                var levels: UnsafeRawBufferPointer?
                if optional {
                    guard header.definitionEncoding == Encoding.rle.rawValue else {
                        throw UserError("\(what): definition levels in \(Encoding.name(header.definitionEncoding)), expected RLE")
                    }
                    levels = try cursor.take(try cursor.length())
                }
                try decodeSlots(header, page: key, levels: levels, values: UnsafeRawBufferPointer(rebasing: page[cursor.position...]),
                                dictionary: dictionary, window: window, into: &storage, nulls: &nulls, what: what)
            }
            return
        }
        let levelBytes = header.definitionLength + header.repetitionLength
        guard header.repetitionLength == 0, header.definitionLength >= 0, optional || header.definitionLength == 0 else {
            throw UserError("\(what): levels a flat \(optional ? "optional" : "required") column does not have "
                + "(\(header.repetitionLength) bytes of repetition, \(header.definitionLength) of definition levels)")
        }
        guard levelBytes <= data.count, levelBytes <= header.uncompressedSize else {
            throw UserError("\(what): \(levelBytes) bytes of levels in a page of \(data.count) (corrupt header)")
        }
        let levels = optional ? UnsafeRawBufferPointer(rebasing: data[..<levelBytes]) : nil
        let values = UnsafeRawBufferPointer(rebasing: data[levelBytes...])
        try file.withPage(values, codec: header.isCompressed ? codec : .uncompressed,
                           size: header.uncompressedSize - levelBytes, what: what) { values in
            try decodeSlots(header, page: key, levels: levels, values: values, dictionary: dictionary, window: window, into: &storage,
                            nulls: &nulls, what: what)
        }
    }

    /// Appends slots `window` of a page (`page` in the file's cache) given its definition levels (nil: none stored,
    /// every slot has a value) and its encoded values.
    private func decodeSlots(_ header: PageHeader, page: PageCache.Key, levels: UnsafeRawBufferPointer?, values: UnsafeRawBufferPointer,
                             dictionary: ChunkDictionary<Storage>?, window: Range<Int>, into storage: inout Storage, nulls: inout [Bool],
                             what: String) throws {
        // Which slots of the window hold a value, and how many values come before the window.
        var skip = window.lowerBound
        var present: [Bool]?
        if let levels {
            var decoder = try HybridDecoder(levels, bitWidth: 1, what: "\(what): definition levels")
            skip = try decoder.skip(window.lowerBound, counting: 1)
            var flags: [Bool] = []
            flags.reserveCapacity(window.count)
            for _ in window { flags.append(try decoder.next() == 1) }
            present = flags
        }
        if column.isOptional { nulls.append(contentsOf: present.map { $0.map { !$0 } } ?? Array(repeating: false, count: window.count)) }
        var cursor = ByteCursor(values, what: what)
        switch header.encoding {
        case Encoding.plain.rawValue:
            try Storage.skipPlain(&cursor, count: skip)
            try forEachSlot(window, present, &storage) { try $0.appendPlain(&cursor) }
        case Encoding.plainDictionary.rawValue, Encoding.rleDictionary.rawValue:
            guard let dictionary else { throw UserError("\(what): dictionary-encoded values without a dictionary page") }
            let bitWidth = Int(try cursor.take(1)[0])
            var indices = try HybridDecoder(UnsafeRawBufferPointer(rebasing: values[cursor.position...]), bitWidth: bitWidth,
                                            what: "\(what): dictionary indices")
            if skip > 0 {
                try indices.skip(skip, from: file.pages.runStarts(page) { indices.runStarts() })
            }
            let count = dictionary.count
            // The decoder goes in as a parameter, not a capture: a captured var would be checked for exclusive
            // access at run time on every index.
            func appendEntries(_ indices: inout HybridDecoder, _ append: (inout Storage, Int) -> Void) throws {
                try forEachSlot(window, present, &storage) { storage in
                    let index = Int(try indices.next())
                    guard index < count else { throw UserError("\(what): dictionary index \(index) of a dictionary of \(count) values") }
                    append(&storage, index)
                }
            }
            switch dictionary {
            case let .decoded(values): try appendEntries(&indices) { $0.append(from: values, at: $1) }
            case let .plain(raw, _): try appendEntries(&indices) { $0.appendPlain(at: $1, of: raw) }
            case let .decompressed(bytes, _): try bytes.withUnsafeBytes { raw in try appendEntries(&indices) { $0.appendPlain(at: $1, of: raw) } }
            }
        case Encoding.rle.rawValue:
            var runs = try HybridDecoder(try cursor.take(try cursor.length()), bitWidth: 1, what: "\(what): RLE values")
            try runs.skip(skip)
            try forEachSlot(window, present, &storage) { try $0.appendRun(try runs.next(), cursor) }
        default:
            throw UserError("\(what): values in \(Encoding.name(header.encoding)), which Plexus does not read "
                + "(PLAIN and dictionary encodings only)")
        }
    }

    /// Calls `append` for each slot of the window that holds a value and appends a null for the others.
    private func forEachSlot(_ window: Range<Int>, _ present: [Bool]?, _ storage: inout Storage,
                             _ append: (inout Storage) throws -> Void) throws {
        if let present {
            for slot in present {
                if slot { try append(&storage) } else { storage.appendNull() }
            }
        } else {
            for _ in window { try append(&storage) }
        }
    }
}

/// A column chunk's dictionary: decoded, or PLAIN numbers read in the page: where the mapped file holds it, or in
/// its decompressed bytes.
enum ChunkDictionary<Storage: ValueStorage> {
    case decoded(Storage)
    case plain(UnsafeRawBufferPointer, count: Int)
    case decompressed([UInt8], count: Int)

    var count: Int {
        switch self {
        case let .decoded(values): return values.count
        case let .plain(_, count), let .decompressed(_, count): return count
        }
    }
}
