// Reads a Parquet file with hyparquet (an implementation independent of DuckDB) and
// prints {"columns": [{name, type, logical}], "rows": [...]} as JSON: BigInt as a
// decimal string, Date as ISO text. Used by tests/integration/parquet_interop_test.cpp.
import { readFileSync } from 'node:fs'
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'

const bytes = readFileSync(process.argv[2])
const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
const metadata = parquetMetadata(file)
const columns = parquetSchema(metadata).children.map((c) => ({
  name: c.element.name,
  type: c.element.type ?? 'GROUP',
  logical: c.element.logical_type?.type ?? c.element.converted_type ?? null,
}))
const codecs = [...new Set(metadata.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data.codec)))]
const rows = await parquetReadObjects({ file, compressors })
const text = JSON.stringify({ columns, codecs, rows }, (_, v) =>
  typeof v === 'bigint' ? v.toString() : v instanceof Date ? v.toISOString() : v)
process.stdout.write(text + '\n')
