#!/usr/bin/env node
// Import a file or directory with ipfs-unixfs-importer (like `ipfs add -r PATH`)
// and print {"root": "<cid>", "blocks": N}, N = distinct blocks reachable from root.
//
// usage: node import.mjs --profile unixfs-v0-2015|unixfs-v1-2025 [--cid-version N]
//          [--raw-leaves true|false] [--chunk-size N] [--max-links N]
//          [--preserve-mode] [--preserve-mtime] PATH
import { parseArgs } from 'node:util'
import { IMPORT_ARG_SPEC, UsageError, die, importPath, reachableBlocks } from './common.mjs'

const USAGE = 'usage: node import.mjs --profile unixfs-v0-2015|unixfs-v1-2025 [--cid-version N] [--raw-leaves true|false] [--chunk-size N] [--max-links N] [--preserve-mode] [--preserve-mtime] PATH'

try {
  let parsed
  try {
    parsed = parseArgs({ options: IMPORT_ARG_SPEC, allowPositionals: true })
  } catch (err) {
    throw new UsageError(`${err.message}\n${USAGE}`)
  }
  const { values, positionals } = parsed
  if (positionals.length !== 1) throw new UsageError(`expected exactly one PATH\n${USAGE}`)
  const { root, blockstore } = await importPath(positionals[0], values)
  let blocks = 0
  for (const _ of reachableBlocks(root, blockstore)) blocks++ // eslint-disable-line no-unused-vars
  process.stdout.write(JSON.stringify({ root: root.toString(), blocks }) + '\n')
} catch (err) {
  die(err)
}
