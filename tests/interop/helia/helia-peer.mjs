// A Helia 7 node for shoal's interop tests: it serves a file over bitswap or
// fetches one from a given peer. See README.md.
//
//   node helia-peer.mjs serve FILE
//   node helia-peer.mjs fetch CID MULTIADDR OUTFILE [--timeout-ms N] [--session]

import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat, unlink } from 'node:fs/promises'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import {
  Failure, UsageError, baseLibp2pOptions, describeError, note, positiveInt, printJson, run, stopWithin
} from './common.mjs'

const SCRIPT = 'helia-peer'
const DEFAULT_FETCH_TIMEOUT_MS = 60_000

// What `serve` imports with: @helia/unixfs's defaults, spelled out so the
// printed settings stay true if those defaults change. They are also
// shoal's unixfs-v1-2025 profile, so both sides derive the same CID.
const IMPORT_SETTINGS = {
  cidVersion: 1,
  rawLeaves: true,
  chunkSize: 1_048_576,
  layout: 'balanced',
  maxChildrenPerNode: 1024
}

const USAGE = `usage:
  node helia-peer.mjs serve FILE
  node helia-peer.mjs fetch CID MULTIADDR OUTFILE [--timeout-ms N] [--session]`

/**
 * A Helia node with libp2p (TCP on 127.0.0.1, noise, yamux, identify, ping)
 * and bitswap, and nothing else: no HTTP gateways or delegated routers (which
 * `createHelia` would add, and which would reach for the internet), no DHT,
 * no mDNS, no bootstrap peers. Blocks and data live in memory.
 */
async function startHelia () {
  const helia = withBitswap(withLibp2pLight(createHeliaLight(), baseLibp2pOptions()))
  await helia.start()
  return helia
}

async function serve (args) {
  if (args.length !== 1) throw new UsageError(`serve takes one FILE\n${USAGE}`)
  const file = args[0]
  const info = await stat(file).catch(err => {
    throw new Failure(`cannot read ${file}: ${err.message}`)
  })
  if (!info.isFile()) throw new Failure(`${file} is not a regular file`)

  let helia
  try {
    helia = await startHelia()
    const fs = unixfs(helia)
    const started = Date.now()
    const cid = await fs.addByteStream(createReadStream(file), {
      cidVersion: IMPORT_SETTINGS.cidVersion,
      rawLeaves: IMPORT_SETTINGS.rawLeaves,
      chunker: fixedSize({ chunkSize: IMPORT_SETTINGS.chunkSize }),
      layout: balanced({ maxChildrenPerNode: IMPORT_SETTINGS.maxChildrenPerNode })
    })
    note(SCRIPT, `added ${file} (${info.size} bytes) as ${cid} in ${Date.now() - started} ms with ${JSON.stringify(IMPORT_SETTINGS)}`)

    helia.libp2p.addEventListener('peer:connect', (evt) => note(SCRIPT, `peer connected: ${evt.detail}`))
    helia.libp2p.addEventListener('peer:disconnect', (evt) => note(SCRIPT, `peer disconnected: ${evt.detail}`))
    const stopped = waitForShutdown()
    printJson({
      peerId: helia.libp2p.peerId.toString(),
      addrs: helia.libp2p.getMultiaddrs().map(ma => ma.toString()),
      cid: cid.toString(),
      bytes: info.size,
      import: IMPORT_SETTINGS
    })
    const why = await stopped
    note(SCRIPT, `${why}: stopping`)
    process.stdin.destroy()
  } finally {
    await stopWithin(helia)
  }
}

/** Resolves (with the reason) once stdin closes or SIGTERM/SIGINT arrives. */
function waitForShutdown () {
  return new Promise(resolve => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
    process.stdin.once('end', () => resolve('stdin closed'))
    process.stdin.once('close', () => resolve('stdin closed'))
    process.stdin.once('error', () => resolve('stdin closed'))
    process.stdin.resume()
  })
}

async function fetch (args) {
  let timeoutMs = DEFAULT_FETCH_TIMEOUT_MS
  let useSession = false
  const positional = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--timeout-ms') {
      timeoutMs = positiveInt('--timeout-ms', args[++i])
    } else if (args[i].startsWith('--timeout-ms=')) {
      timeoutMs = positiveInt('--timeout-ms', args[i].slice('--timeout-ms='.length))
    } else if (args[i] === '--session') {
      useSession = true
    } else if (args[i].startsWith('--')) {
      throw new UsageError(`unknown option ${args[i]}\n${USAGE}`)
    } else {
      positional.push(args[i])
    }
  }
  if (positional.length !== 3) throw new UsageError(`fetch takes CID MULTIADDR OUTFILE\n${USAGE}`)
  const [cidText, addrText, outFile] = positional

  let cid, addr
  try {
    cid = CID.parse(cidText)
  } catch (err) {
    throw new UsageError(`bad CID ${cidText}: ${err.message}`)
  }
  try {
    addr = multiaddr(addrText)
  } catch (err) {
    throw new UsageError(`bad multiaddr ${addrText}: ${err.message}`)
  }
  if (!addr.getComponents().some(c => c.name === 'p2p')) {
    throw new UsageError(`multiaddr ${addrText} has no /p2p/PEER_ID`)
  }

  const signal = AbortSignal.timeout(timeoutMs)
  const started = Date.now()
  let step = 'starting Helia'
  let helia
  let out
  // Helia's bitswap sends its wantlist only to peers whose identify record
  // lists a bitswap protocol; remember whether the remote peer's was accepted
  // to explain a fetch that never gets an answer.
  const expected = addr.getComponents().find(c => c.name === 'p2p').value
  let identified = null
  try {
    helia = await startHelia()
    helia.libp2p.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() === expected) identified = evt.detail
    })
    step = `dialling ${addr}`
    const conn = await helia.libp2p.dial(addr, { signal })
    note(SCRIPT, `connected to ${conn.remotePeer} via ${conn.remoteAddr}`)

    step = `fetching ${cid}${useSession ? ' (session)' : ''}`
    // A session asks its providers directly; plain helia.blockstore sends
    // wants to the connected peers that identify showed to speak bitswap.
    const blockstore = useSession
      ? helia.blockstore.createSession(cid, { signal, providers: [addr] })
      : helia.blockstore
    const fs = unixfs({ blockstore })
    const hash = createHash('sha256')
    let bytes = 0
    const transferStarted = Date.now()
    out = await open(outFile, 'w')
    for await (const chunk of fs.cat(cid, { signal, providers: [addr] })) {
      hash.update(chunk)
      bytes += chunk.byteLength
      await out.write(chunk)
    }
    await out.close()
    out = undefined
    const now = Date.now()
    printJson({
      bytes,
      sha256: hash.digest('hex'),
      ms: now - started,
      transfer_ms: now - transferStarted,
      mode: useSession ? 'session' : 'blockstore'
    })
  } catch (err) {
    // leave no partial output behind
    await out?.close().catch(() => {})
    out = undefined
    await unlink(outFile).catch(() => {})
    let hint = ''
    if (useSession) {
      hint = step.startsWith('fetching')
        ? '\n  (DEBUG=helia:bitswap* shows which wants went out and which blocks came back)'
        : ''
    } else if (helia != null && identified == null && step.startsWith('fetching')) {
      hint = '\n  (js-libp2p accepted no identify record from the remote peer, so Helia does not know it' +
        ' speaks bitswap and sends it no wants; DEBUG=libp2p:identify* shows more, --session bypasses this)'
    } else if (identified != null && !identified.protocols.some(p => p.startsWith('/ipfs/bitswap'))) {
      hint = `\n  (the remote peer lists no bitswap protocol: ${JSON.stringify(identified.protocols)})`
    }
    if (signal.aborted) {
      throw new Failure(`timed out after ${timeoutMs} ms while ${step}${hint}`)
    }
    throw new Failure(`failed while ${step}: ${describeError(err)}${hint}`)
  } finally {
    await out?.close().catch(() => {})
    await stopWithin(helia)
  }
}

async function main () {
  const [mode, ...args] = process.argv.slice(2)
  if (mode === 'serve') return serve(args)
  if (mode === 'fetch') return fetch(args)
  throw new UsageError(USAGE)
}

await run(SCRIPT, main)
