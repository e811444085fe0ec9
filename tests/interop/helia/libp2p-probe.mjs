// A plain js-libp2p 3 node that checks a peer's basic protocols: it dials
// MULTIADDR, pings it, reads its identify record and sends it a Kademlia
// FIND_NODE. It prints one JSON line whatever happens (with the failed
// steps under "errors") and exits 1 when a step failed. See README.md.
//
//   node libp2p-probe.mjs MULTIADDR [--timeout-ms N]

import { randomBytes } from 'node:crypto'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  Failure, UsageError, baseLibp2pOptions, describeError, note, positiveInt, printJson, run, stopWithin
} from './common.mjs'

const SCRIPT = 'libp2p-probe'
const DEFAULT_TIMEOUT_MS = 30_000
const KAD_PROTOCOL = '/ipfs/kad/1.0.0'
const USAGE = 'usage: node libp2p-probe.mjs MULTIADDR [--timeout-ms N]'

function parseArgs (args) {
  let timeoutMs = DEFAULT_TIMEOUT_MS
  const positional = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--timeout-ms') {
      timeoutMs = positiveInt('--timeout-ms', args[++i])
    } else if (args[i].startsWith('--timeout-ms=')) {
      timeoutMs = positiveInt('--timeout-ms', args[i].slice('--timeout-ms='.length))
    } else if (args[i] === '-h' || args[i] === '--help') {
      throw new UsageError(USAGE)
    } else {
      positional.push(args[i])
    }
  }
  if (positional.length !== 1) throw new UsageError(USAGE)
  let addr
  try {
    addr = multiaddr(positional[0])
  } catch (err) {
    throw new UsageError(`bad multiaddr ${positional[0]}: ${err.message}`)
  }
  if (!addr.getComponents().some(c => c.name === 'p2p')) {
    throw new UsageError(`multiaddr ${positional[0]} has no /p2p/PEER_ID`)
  }
  return { addr, timeoutMs }
}

/** Resolves with `emitter`'s first `name` event that `filter` accepts. */
function nextEvent (emitter, name, filter, signal) {
  return new Promise((resolve, reject) => {
    const onEvent = (evt) => {
      if (!filter(evt)) return
      cleanup()
      resolve(evt)
    }
    const onAbort = () => {
      cleanup()
      reject(signal.reason ?? new Error('aborted'))
    }
    const cleanup = () => {
      emitter.removeEventListener(name, onEvent)
      signal.removeEventListener('abort', onAbort)
    }
    emitter.addEventListener(name, onEvent)
    signal.addEventListener('abort', onAbort)
  })
}

/** What identify told us about the remote peer, as reported. */
function describeIdentify (result, source) {
  return {
    agent: result.agentVersion ?? null,
    protocolVersion: result.protocolVersion ?? null,
    protocols: [...result.protocols].sort(),
    listenAddrs: result.listenAddrs.map(ma => ma.toString()),
    source
  }
}

/**
 * The remote peer's identify record. libp2p runs identify on every new
 * connection and announces the result with a `peer:identify` event; when no
 * such event comes (js-libp2p drops a record it rejects without a word), run
 * identify again by hand to learn why, and fail with that reason.
 */
async function identifyRemote (node, conn, pending, signal) {
  const fromEvent = await Promise.race([
    pending,
    new Promise(resolve => setTimeout(resolve, 5_000, null).unref())
  ])
  if (fromEvent != null) return describeIdentify(fromEvent, 'identify event')
  signal.throwIfAborted()

  const identifyService = node.services.identify
  try {
    const result = await identifyService.identify(conn, { signal })
    return describeIdentify(result, 'identify run by the probe')
  } catch (err) {
    if (signal.aborted) throw err
    // js-libp2p threw the message away; fetch it again (internal API, for
    // the report only) to show what the remote peer sent
    let sent = ''
    try {
      const raw = await identifyService._identify(conn, { signal })
      sent = ` (it sent agent ${JSON.stringify(raw.agentVersion)}, protocols ${JSON.stringify(raw.protocols)}` +
        `, signedPeerRecord ${raw.signedPeerRecord != null ? 'present' : 'absent'})`
    } catch {}
    throw new Failure(`js-libp2p rejected the remote peer's identify message: ${describeError(err)}${sent}`)
  }
}

/**
 * Runs a getClosestPeers query for a random key with `remote` in the DHT
 * routing table (its only entry, so the query's FIND_NODE goes to it), and
 * reports who was asked, who answered and with which peers. The kad-dht adds
 * a peer to its table once identify shows it speaks the kad protocol; when
 * that has not happened within a few seconds (say identify failed), the
 * probe adds it by hand so FIND_NODE is still tried, and says so.
 */
async function findNode (dht, remote, signal) {
  const started = Date.now()
  let entry = 'added by kad-dht after identify'
  if (await dht.routingTable.find(remote) == null) {
    const waitSignal = AbortSignal.any([signal, AbortSignal.timeout(3_000)])
    try {
      await nextEvent(dht.routingTable, 'peer:add', evt => evt.detail.equals(remote), waitSignal)
    } catch (err) {
      if (signal.aborted) throw err
      await dht.routingTable.add(remote, { signal })
      entry = 'added by the probe (kad-dht had not added it)'
    }
  }

  const key = randomBytes(32)
  const sentTo = []
  const responses = []
  const errors = []
  const closest = []
  for await (const event of dht.getClosestPeers(key, { signal })) {
    switch (event.name) {
      case 'SEND_QUERY':
        sentTo.push({ to: event.to.toString(), message: event.messageName })
        break
      case 'PEER_RESPONSE':
        responses.push({
          from: event.from.toString(),
          message: event.messageName,
          closer: event.closer.map(p => ({
            id: p.id.toString(),
            addrs: p.multiaddrs.map(ma => ma.toString())
          }))
        })
        break
      case 'QUERY_ERROR':
        errors.push({ from: event.from.toString(), error: describeError(event.error) })
        break
      case 'FINAL_PEER':
        closest.push(event.peer.id.toString())
        break
      default:
        break
    }
  }
  signal.throwIfAborted()

  const remoteText = remote.toString()
  const answer = responses.find(r => r.from === remoteText && r.message === 'FIND_NODE')
  const result = {
    key: key.toString('hex'),
    routing_table: entry,
    sent_to: sentTo,
    responses,
    errors,
    closest,
    remote_answered: answer != null,
    remote_closer: answer?.closer.length ?? null,
    ms: Date.now() - started
  }
  let error = null
  if (answer == null) {
    const why = errors.filter(e => e.from === remoteText).map(e => e.error).join('; ')
    if (why !== '') {
      error = `FIND_NODE to ${remoteText} failed: ${why}`
    } else if (!sentTo.some(s => s.to === remoteText && s.message === 'FIND_NODE')) {
      error = `no FIND_NODE was sent to ${remoteText}`
    } else {
      error = `${remoteText} did not answer FIND_NODE`
    }
  }
  return { result, error }
}

async function main () {
  const { addr, timeoutMs } = parseArgs(process.argv.slice(2))
  const signal = AbortSignal.timeout(timeoutMs)
  const started = Date.now()
  const report = {
    peerId: null,
    ping_ms: null,
    agent: null,
    protocol_version: null,
    protocols: null,
    listen_addrs: null,
    identify_source: null,
    find_node: null,
    errors: [],
    ms: null
  }
  const failed = (step, err) => {
    if (signal.aborted) throw err
    report.errors.push(`${step}: ${describeError(err)}`)
  }

  let node
  let step = 'starting libp2p'
  try {
    const options = baseLibp2pOptions()
    options.services.dht = kadDHT({
      protocol: KAD_PROTOCOL,
      clientMode: true,
      // the peers are on 127.0.0.1: keep their loopback addresses (the
      // default mapper drops private addresses, and with them the peer)
      peerInfoMapper: passthroughMapper
    })
    node = await createLibp2p(options)

    // listen before dialling: identify runs as soon as the connection is up
    const expected = addr.getComponents().find(c => c.name === 'p2p').value
    const identified = nextEvent(node, 'peer:identify', evt => evt.detail.peerId.toString() === expected, signal)
      .then(evt => evt.detail, () => null)

    step = `dialling ${addr}`
    const conn = await node.dial(addr, { signal })
    const remote = conn.remotePeer
    report.peerId = remote.toString()
    note(SCRIPT, `connected to ${remote} via ${conn.remoteAddr} (${conn.encryption ?? '?'}, ${conn.multiplexer ?? '?'})`)

    // Up to 3 attempts: rust-libp2p pings every new connection at once, and
    // when its ping lands first js-libp2p sometimes finds its own fresh ping
    // stream closed ("Cannot write to a stream that is closed"); a second
    // ping on the same connection then succeeds.
    step = 'ping'
    report.ping_attempts = 0
    for (let attempt = 1; attempt <= 3; attempt++) {
      report.ping_attempts = attempt
      try {
        report.ping_ms = await node.services.ping.ping(remote, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) })
        break
      } catch (err) {
        if (attempt === 3) failed(step, err)
        else note(SCRIPT, `ping attempt ${attempt} failed: ${describeError(err)}`)
      }
    }

    step = 'identify'
    try {
      const id = await identifyRemote(node, conn, identified, signal)
      report.agent = id.agent
      report.protocol_version = id.protocolVersion
      report.protocols = id.protocols
      report.listen_addrs = id.listenAddrs
      report.identify_source = id.source
      // what js-libp2p made of the signed peer record: it keeps the envelope
      // and marks the addresses from it as certified only if it verified
      const stored = await node.peerStore.get(remote)
      report.peer_record = stored.peerRecordEnvelope != null
      report.certified_addrs = stored.addresses.filter(a => a.isCertified).map(a => a.multiaddr.toString())
      if (!id.protocols.includes(KAD_PROTOCOL)) {
        report.errors.push(`identify: the remote peer does not list ${KAD_PROTOCOL} (is its DHT in client mode?)`)
      }
    } catch (err) {
      failed(step, err)
    }

    step = 'FIND_NODE'
    try {
      const { result, error } = await findNode(node.services.dht, remote, signal)
      report.find_node = result
      if (error != null) report.errors.push(`FIND_NODE: ${error}`)
    } catch (err) {
      failed(step, err)
    }
  } catch (err) {
    if (signal.aborted) {
      report.errors.push(`timed out after ${timeoutMs} ms during ${step}`)
    } else {
      report.errors.push(`${step}: ${describeError(err)}`)
    }
  } finally {
    await stopWithin(node)
  }

  report.ms = Date.now() - started
  printJson(report)
  if (report.errors.length > 0) {
    throw new Failure(report.errors.join('\n  '))
  }
}

await run(SCRIPT, main)
