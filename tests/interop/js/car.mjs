#!/usr/bin/env node
// CAR v1 helpers built on @ipld/car.
//
//   node car.mjs read FILE
//     Read FILE with CarReader, check every block hashes to its CID, print
//     {"roots": [...], "blocks": N, "bytes": total block bytes}.
//
//   node car.mjs write --profile P [import flags] PATH OUT.car
//     Import PATH exactly like import.mjs and write all blocks to OUT.car
//     (root CID as the single root; the blocks reachable from it, each once,
//     in depth-first pre-order),
//     print {"root": "<cid>", "blocks": N}.
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { CarReader, CarWriter } from '@ipld/car'
import { equals } from 'multiformats/bytes'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { IMPORT_ARG_SPEC, UsageError, die, importPath, reachableBlocks } from './common.mjs'

const USAGE = `usage:
  node car.mjs read FILE
  node car.mjs write --profile unixfs-v0-2015|unixfs-v1-2025 [--cid-version N] [--raw-leaves true|false] [--chunk-size N] [--max-links N] [--preserve-mode] [--preserve-mtime] PATH OUT.car`

const HASHERS = new Map([[sha256.code, sha256], [identity.code, identity]])

async function read (args) {
  if (args.length !== 1) throw new UsageError(`read: expected exactly one FILE\n${USAGE}`)
  const file = args[0]
  let reader
  try {
    reader = await CarReader.fromIterable(createReadStream(file))
  } catch (err) {
    throw new Error(`${file}: not a readable CAR: ${err.message}`)
  }
  let blocks = 0
  let bytes = 0
  for await (const { cid, bytes: data } of reader.blocks()) {
    const hasher = HASHERS.get(cid.multihash.code)
    if (hasher == null) throw new Error(`${file}: block ${cid}: unsupported multihash code 0x${cid.multihash.code.toString(16)}`)
    const digest = await hasher.digest(data)
    if (!equals(digest.bytes, cid.multihash.bytes)) {
      const hex = (b) => Buffer.from(b).toString('hex')
      throw new Error(`${file}: block ${cid}: bytes do not hash to the CID (digest ${hex(digest.digest)}, expected ${hex(cid.multihash.digest)})`)
    }
    blocks++
    bytes += data.byteLength
  }
  const roots = (await reader.getRoots()).map(String)
  process.stdout.write(JSON.stringify({ roots, blocks, bytes }) + '\n')
}

async function write (argv) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: IMPORT_ARG_SPEC, allowPositionals: true })
  } catch (err) {
    throw new UsageError(`write: ${err.message}\n${USAGE}`)
  }
  const { values, positionals } = parsed
  if (positionals.length !== 2) throw new UsageError(`write: expected PATH and OUT.car\n${USAGE}`)
  const [path, out] = positionals
  const { root, blockstore } = await importPath(path, values)

  const file = await open(out, 'w').catch(err => { throw new Error(`cannot create ${out}: ${err.message}`) })
  const { writer, out: carBytes } = CarWriter.create([root])
  const done = pipeline(Readable.from(carBytes), file.createWriteStream())
  done.catch(() => {}) // surfaced by `await done` below
  let blocks = 0
  for (const block of reachableBlocks(root, blockstore)) {
    await writer.put(block)
    blocks++
  }
  await writer.close()
  await done
  process.stdout.write(JSON.stringify({ root: root.toString(), blocks }) + '\n')
}

try {
  const [cmd, ...rest] = process.argv.slice(2)
  if (cmd === 'read') await read(rest)
  else if (cmd === 'write') await write(rest)
  else throw new UsageError(cmd == null ? USAGE : `unknown subcommand '${cmd}'\n${USAGE}`)
} catch (err) {
  die(err)
}
