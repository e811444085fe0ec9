// Shared pieces of the Helia / js-libp2p interop scripts: the libp2p
// transport stack, error reporting and timeouts.

import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'

/** Exit code for a bad command line. */
export const EXIT_USAGE = 2
/** Exit code for any other failure. */
export const EXIT_FAILURE = 1

/** A failure whose message is all the caller needs (no stack trace). */
export class Failure extends Error {
  constructor (message, code = EXIT_FAILURE) {
    super(message)
    this.name = 'Failure'
    this.code = code
  }
}

export class UsageError extends Failure {
  constructor (message) {
    super(message, EXIT_USAGE)
    this.name = 'UsageError'
  }
}

/**
 * The libp2p options both scripts start from: TCP on 127.0.0.1 with a port
 * the OS picks, noise, yamux, identify and ping. No peer discovery (no mDNS,
 * no bootstrap list), so the node only talks to the peers it is told to dial.
 */
export function baseLibp2pOptions () {
  return {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: {
      identify: identify(),
      ping: ping()
    }
  }
}

/** Writes exactly one line of JSON to stdout. */
export function printJson (value) {
  process.stdout.write(JSON.stringify(value) + '\n')
}

/** Logs a progress note on stderr (stdout is kept for the JSON result). */
export function note (script, message) {
  process.stderr.write(`${script}: ${message}\n`)
}

/** Parses a positive integer option value or throws a UsageError. */
export function positiveInt (name, text) {
  if (text == null || !/^[0-9]+$/.test(text) || Number(text) <= 0) {
    throw new UsageError(`${name} needs a positive integer, got ${JSON.stringify(text)}`)
  }
  return Number(text)
}

/** A one-line description of an error, following `cause` and aggregates. */
export function describeError (err) {
  if (err == null) return String(err)
  const parts = []
  const seen = new Set()
  const walk = (e, depth) => {
    if (e == null || seen.has(e) || depth > 4) return
    seen.add(e)
    if (typeof e !== 'object') {
      parts.push(String(e))
      return
    }
    const plain = e.name == null || ['Error', 'Failure', 'UsageError'].includes(e.name)
    const label = plain ? '' : `${e.name}: `
    parts.push(`${label}${e.message ?? String(e)}`)
    if (Array.isArray(e.errors)) {
      for (const inner of e.errors) walk(inner, depth + 1)
    }
    walk(e.cause, depth + 1)
  }
  walk(err, 0)
  return parts.join(' <- ')
}

/**
 * Runs `main`, prints `error: ...` on stderr and sets the exit code when it
 * throws (SHOAL_JS_DEBUG=1 adds the stack trace). A watchdog ends the
 * process if shutting down after `main` takes longer than `graceMs`.
 */
export async function run (script, main, graceMs = 5_000) {
  let code = 0
  try {
    await main()
  } catch (err) {
    code = err instanceof Failure ? err.code : EXIT_FAILURE
    process.stderr.write(`${script}: error: ${describeError(err)}\n`)
    if (process.env.SHOAL_JS_DEBUG === '1' && err?.stack != null) {
      process.stderr.write(`${err.stack}\n`)
    }
  }
  process.exitCode = code
  // Open sockets or timers left by a failed step must not keep us alive.
  setTimeout(() => process.exit(code), graceMs).unref()
}

/**
 * Stops a node, giving up after `ms` (a stop that hangs must not turn a
 * finished run into a timeout).
 */
export async function stopWithin (node, ms = 5_000) {
  if (node == null) return
  let timer
  await Promise.race([
    node.stop().catch(() => {}),
    new Promise(resolve => { timer = setTimeout(resolve, ms) })
  ])
  clearTimeout(timer)
}
