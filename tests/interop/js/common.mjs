// Shared helpers for import.mjs and car.mjs: argument handling and the
// `ipfs add -r PATH` equivalent built on ipfs-unixfs-importer.
import { createReadStream } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { base32 } from 'multiformats/bases/base32'

export const PROFILES = ['unixfs-v0-2015', 'unixfs-v1-2025']

/** parseArgs option spec for the import flags (shared by import.mjs and `car.mjs write`). */
export const IMPORT_ARG_SPEC = {
  profile: { type: 'string' },
  'cid-version': { type: 'string' },
  'raw-leaves': { type: 'string' },
  'chunk-size': { type: 'string' },
  'max-links': { type: 'string' },
  'preserve-mode': { type: 'boolean', default: false },
  'preserve-mtime': { type: 'boolean', default: false }
}

export class UsageError extends Error {}

/**
 * Print an error and exit non-zero (2 for usage errors, 1 otherwise).
 * Set SHOAL_JS_DEBUG=1 to get the stack trace too.
 */
export function die (err) {
  const msg = err instanceof Error ? err.message : String(err)
  process.stderr.write(`error: ${msg}\n`)
  if (process.env.SHOAL_JS_DEBUG && err?.stack) process.stderr.write(`${err.stack}\n`)
  process.exit(err instanceof UsageError ? 2 : 1)
}

function positiveInt (name, value) {
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`--${name} must be a positive integer, got '${value}'`)
  return Number(value)
}

/**
 * Turn parsed CLI values into importer options. The profile (IPIP-499) sets the
 * defaults inside the importer (cidVersion, rawLeaves, chunk size, max links,
 * shard split strategy); explicit flags override them.
 */
export function importerOptions (values) {
  if (values.profile == null) throw new UsageError(`--profile is required (one of ${PROFILES.join(', ')})`)
  if (!PROFILES.includes(values.profile)) throw new UsageError(`unknown --profile '${values.profile}' (expected one of ${PROFILES.join(', ')})`)
  const opts = { profile: values.profile }
  if (values['cid-version'] != null) {
    if (!['0', '1'].includes(values['cid-version'])) throw new UsageError(`--cid-version must be 0 or 1, got '${values['cid-version']}'`)
    opts.cidVersion = Number(values['cid-version'])
  }
  if (values['raw-leaves'] != null) {
    if (!['true', 'false'].includes(values['raw-leaves'])) throw new UsageError(`--raw-leaves must be true or false, got '${values['raw-leaves']}'`)
    opts.rawLeaves = values['raw-leaves'] === 'true'
  }
  // The importer only derives chunk size / fan-out from the profile when no
  // chunker / layout is given, so overriding one means supplying our own.
  if (values['chunk-size'] != null) opts.chunker = fixedSize({ chunkSize: positiveInt('chunk-size', values['chunk-size']) })
  if (values['max-links'] != null) opts.layout = balanced({ maxChildrenPerNode: positiveInt('max-links', values['max-links']) })
  return opts
}

/**
 * UnixFS mtime from a bigint stat: { secs: bigint, nsecs?: number }.
 * nsecs is omitted when zero, as kubo does.
 */
function mtimeOf (st) {
  const ns = st.mtimeNs
  let secs = ns / 1_000_000_000n
  let nsecs = ns % 1_000_000_000n
  if (nsecs < 0n) { secs -= 1n; nsecs += 1_000_000_000n } // floor for pre-1970 times
  return nsecs === 0n ? { secs } : { secs, nsecs: Number(nsecs) }
}

/** Byte-wise (UTF-8) name order, independent of locale. */
const byName = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))

/**
 * Import candidates for PATH, pre-order (a directory before its children),
 * children sorted by name. Paths are rooted at basename(PATH) so a directory
 * import yields that directory as the root, like `ipfs add -r PATH`.
 */
async function * candidates (absPath, relPath, preserve, isTop) {
  const st = await lstat(absPath, { bigint: true })
  if (st.isSymbolicLink()) {
    if (isTop) throw new UsageError(`${absPath} is a symlink; symlinks are not supported`)
    process.stderr.write(`warning: skipping symlink ${absPath}\n`)
    return
  }
  if (relPath.endsWith('\\')) throw new Error(`cannot import ${absPath}: names ending in '\\' are not supported by the importer's path handling`)
  const meta = {}
  if (preserve.mode) meta.mode = Number(st.mode & 0o7777n)
  if (preserve.mtime) meta.mtime = mtimeOf(st)

  if (st.isFile()) {
    // lazy: the file is only opened when the importer starts reading it
    const content = (async function * () { yield * createReadStream(absPath) })()
    yield { path: relPath, content, ...meta }
  } else if (st.isDirectory()) {
    yield { path: relPath, ...meta }
    const names = (await readdir(absPath)).sort(byName)
    for (const name of names) {
      yield * candidates(join(absPath, name), `${relPath}/${name}`, preserve, false)
    }
  } else if (isTop) {
    throw new UsageError(`${absPath} is neither a regular file nor a directory`)
  } else {
    process.stderr.write(`warning: skipping special file ${absPath}\n`)
  }
}

/** A block's bytes from a MemoryBlockstore as one Uint8Array. */
function getBytes (blockstore, cid) {
  const chunks = [...blockstore.get(cid)]
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

/**
 * Blocks reachable from root, depth-first pre-order, each once (by multihash):
 * yields { cid, bytes }. The importer also stores an orphan block for every
 * directory candidate before re-building the directory with its children, so
 * counting/exporting the reachable DAG is what matches `ipfs dag export`.
 */
export function * reachableBlocks (root, blockstore) {
  const seen = new Set()
  const stack = [root]
  while (stack.length > 0) {
    const cid = stack.pop()
    const key = base32.encode(cid.multihash.bytes)
    if (seen.has(key)) continue
    seen.add(key)
    const bytes = getBytes(blockstore, cid)
    yield { cid, bytes }
    if (cid.code === dagPb.code) {
      const links = dagPb.decode(bytes).Links
      for (let i = links.length - 1; i >= 0; i--) stack.push(links[i].Hash)
    }
  }
}

/**
 * Import PATH (file or directory, recursively) and return
 * { root: CID, blockstore: MemoryBlockstore }.
 */
export async function importPath (path, values) {
  const opts = importerOptions(values)
  const absPath = resolve(path)
  const name = basename(absPath)
  if (name === '') throw new UsageError(`cannot import '${path}': it has no base name`)
  const preserve = { mode: values['preserve-mode'], mtime: values['preserve-mtime'] }
  const blockstore = new MemoryBlockstore()

  // The importer yields every file and finally the directories bottom-up; with
  // one top-level entry and wrapWithDirectory=false, the last entry is the
  // top-level file or directory itself.
  let last
  for await (const entry of importer(candidates(absPath, name, preserve, true), blockstore, opts)) {
    last = entry
  }
  if (last == null) throw new Error(`importer produced no entries for ${absPath}`)
  if (last.path !== name) throw new Error(`internal: expected the last entry to be '${name}', got '${last.path}'`)
  return { root: last.cid, blockstore }
}
