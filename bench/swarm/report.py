#!/usr/bin/env python3
"""Summarise bench/swarm runs: report.py RUNS.jsonl RESULTS.json [--json]

Reads one JSON object per run (written by run.sh), prints the table (or the
results as JSON) and writes RESULTS.json. Exit status 1 when any run failed.
Context (tree, binaries, topology) comes from the environment run.sh sets.
"""
import json
import os
import statistics
import sys

TARGET_SWARM = 3.5  # (b): shoal from N seeders vs nginx from one host at the same rate


def env(k, d=""):
    return os.environ.get(k, d)


def load(path):
    runs = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    runs.append(json.loads(line))
    return runs


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def xf(v):
    return "-" if v is None else f"{v:.2f}x"


def wall(s):
    if s.get("wall_s") is not None:
        return fmt(s["wall_s"])
    return f"({fmt(s['failed_wall_s'])})" if s.get("failed_wall_s") is not None else "-"


def summarise(runs, row):
    rs = [r for r in runs if r.get("row") == row]
    if not rs:
        return None
    ok = [r for r in rs if r.get("ok") == 1]
    s = {"row": row, "runs": len(rs), "ok_runs": len(ok),
         "errors": sorted({r["error"] for r in rs if r.get("error")})}
    if not ok:
        # how long the failed runs took until the error (shown in parentheses, never in ratios)
        fw = [float(r["wall_s"]) for r in rs if r.get("wall_s") not in (None, "")]
        s["failed_wall_s"] = med(fw)
        return s
    wall = med([float(r["wall_s"]) for r in ok])
    size = ok[0]["bytes"]
    s.update({
        "wall_s": wall,
        "walls": [float(r["wall_s"]) for r in ok],
        "bytes": size,
        "files": ok[0]["files"],
        "MB_s": size / wall / 1e6 if wall else None,
        "Mbit_s": size * 8 / wall / 1e6 if wall else None,
        "files_s": ok[0]["files"] / wall if wall else None,
        "wire_rx": med([r["wire_rx"] for r in ok]),
        "wire_if": ok[0].get("wire_if"),
    })
    s["wire_ratio"] = s["wire_rx"] / size if size else None
    st = [r.get("stats") or {} for r in ok]
    recv = [((x.get("sync") or {}).get("bytes_received")) for x in st]
    if any(v is not None for v in recv):
        s["shoal_bytes_received"] = med(recv)
        s["shoal_recv_ratio"] = s["shoal_bytes_received"] / size if size else None
        s["bitswap_blocks_received"] = med([(x.get("bitswap") or {}).get("blocks_received") for x in st])
        s["sync_violations"] = max(((x.get("sync") or {}).get("violations") or 0) for x in st)
        s["peers_banned"] = max(((x.get("bitswap") or {}).get("peers_banned") or 0) for x in st)
    shares = [r.get("seeder_tx") for r in ok if r.get("seeder_tx")]
    if shares:
        n = len(shares[0])
        s["seeder_tx"] = [med([sh[k] for sh in shares]) for k in range(n)]
    for k in ("fault", "fault_target", "peers_after"):
        if k in ok[0]:
            s[k] = ok[0][k]
    return s


def ttfb(runs):
    out = {}
    for r in runs:
        if r.get("row", "").startswith("ttfb-"):
            key = f'{r["row"]}/{r["proto"]}/{r["state"]}'
            out.setdefault(key, []).append(float(r["ttfb_s"]))
    size = next((r["size"] for r in runs if r.get("row", "").startswith("ttfb-")), None)
    path = next((r["path"] for r in runs if r.get("row", "").startswith("ttfb-")), None)
    return {k: {"median_ms": med(v) * 1000, "n": len(v), "all_ms": [round(x * 1000, 2) for x in v]}
            for k, v in out.items()}, size, path


def ratio(a, b, key="MB_s"):
    if not a or not b or a.get(key) is None or not b.get(key):
        return None
    return a[key] / b[key]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    runs = load(argv[0])
    as_json = "--json" in argv[2:]
    link = {}
    if env("LINK_FILE") and os.path.exists(env("LINK_FILE")):
        link = json.load(open(env("LINK_FILE")))
    rows = ["lo-nginx-http", "lo-nginx-https", "lo-shoal", "ns-nginx-http", "ns-nginx-https",
            "ns-shoal", "small-nginx-http", "small-nginx-https", "small-shoal",
            "fault-kill", "fault-liar", "fault-stop"]
    S = {r: summarise(runs, r) for r in rows}
    T, tsize, tpath = ttfb(runs)
    ns_base = S["ns-nginx-https"] if S["ns-nginx-https"] and S["ns-nginx-https"].get("MB_s") else S["ns-nginx-http"]
    lo_base = S["lo-nginx-https"] if S["lo-nginx-https"] and S["lo-nginx-https"].get("MB_s") else S["lo-nginx-http"]
    sm_base = S["small-nginx-https"] if S["small-nginx-https"] and S["small-nginx-https"].get("files_s") else S["small-nginx-http"]
    clean = S["ns-shoal"]
    targets = []
    r_ns = ratio(clean, ns_base)
    if clean and ns_base:
        targets.append({"what": f"(b) shoal from {env('SEEDERS')} seeders / nginx from one host, both at {env('RATE')} Mbit/s",
                        "target": f">= {TARGET_SWARM}x", "value": r_ns,
                        "met": r_ns is not None and r_ns >= TARGET_SWARM})
    for f in ("fault-kill", "fault-liar", "fault-stop"):
        s = S[f]
        if s:
            targets.append({"what": f"(f) {f}: the fetch completes, verified", "target": "completes",
                            "value": s["ok_runs"] == s["runs"], "met": s["ok_runs"] == s["runs"]})
    results = {
        "context": {k: env(k) for k in ("COMMIT", "PARAMS", "TREE_FILES", "TREE_BYTES", "SEEDERS", "RATE",
                                        "RUNS", "CONNS", "NPROC", "CPU", "SHOAL_DESC", "LIAR_DESC",
                                        "NGINX_DESC", "CURL_DESC", "ROOT_CID")},
        "link": link,
        "rows": {k: v for k, v in S.items() if v},
        "ttfb": {"file_bytes": tsize, "path": tpath, **T},
        "ratios": {"lo_shoal_vs_nginx": ratio(S["lo-shoal"], lo_base),
                   "ns_shoal_vs_nginx": r_ns,
                   "small_shoal_vs_nginx_files_s": ratio(S["small-shoal"], sm_base, "files_s")},
        "targets": targets,
    }
    with open(argv[1], "w") as f:
        json.dump(results, f, indent=2)
    failed = [s for s in S.values() if s and s["ok_runs"] < s["runs"]]
    if as_json:
        print(json.dumps(results, indent=2))
        return 1 if failed else 0

    p = print
    c = results["context"]
    p(f"bench/swarm @ {c['COMMIT']} — {c['NPROC']} x {c['CPU']}")
    p(f"tree: {c['TREE_FILES']} files, {int(c['TREE_BYTES'] or 0) / 1e9:.3f} GB ({c['PARAMS']}); root {c['ROOT_CID'] or '-'}")
    p(f"shoal: {c['SHOAL_DESC']}")
    p(f"liar:  {c['LIAR_DESC']}")
    p(f"nginx: {c['NGINX_DESC']} (worker_processes auto, sendfile, keep-alive; HTTPS TLS 1.3 ECDSA P-256); "
      f"client: {c['CURL_DESC']} --parallel-max {c['CONNS']}, HTTP/1.1 keep-alive, files written to disk")
    p(f"medians of {c['RUNS']} run(s) per row; every fetched tree verified against the manifest (sha256 of every file)")
    if link:
        p(f"netns: {link['seeders']} seeders, uplink {link['rate_mbit']} Mbit/s each (HTB on the wire); link check "
          f"(curl from sw-f, payload): one seeder {link['single_mbit']} Mbit/s, all {link['seeders']} at once "
          f"{link['parallel_mbit']} Mbit/s; no latency emulated (no netem)")

    def table(title, head, body):
        p()
        p(title)
        w = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
        line = lambda cells: "  ".join(str(x).ljust(w[i]) if i == 0 else str(x).rjust(w[i]) for i, x in enumerate(cells))
        p(line(head))
        p("  ".join("-" * x for x in w))
        for b in body:
            p(line(b))

    def status(s):
        if s["ok_runs"] == s["runs"]:
            return f"{s['ok_runs']}/{s['runs']}"
        return f"FAILED {s['ok_runs']}/{s['runs']}"

    # (a)(c) loopback
    body = []
    for r, label in (("lo-nginx-http", "nginx HTTP"), ("lo-nginx-https", "nginx HTTPS"), ("lo-shoal", "shoal get (A -> B)")):
        s = S[r]
        if not s:
            continue
        body.append([label, wall(s), fmt(s.get("MB_s"), ".1f"), fmt(s.get("wire_ratio"), ".3f"),
                     fmt(s.get("shoal_recv_ratio"), ".3f"), xf(ratio(s, lo_base)),
                     status(s)])
    if body:
        table("(a, c) loopback, one source (127.0.0.1)",
              ["row", "wall s", "MB/s", "lo bytes/payload", "shoal recv/payload", f"vs {'HTTPS' if lo_base is S['lo-nginx-https'] else 'HTTP'}", "ok"],
              body)
        p("   lo bytes = rx_bytes of lo over the fetch: every packet on 127.0.0.1 once, both directions "
          "(requests, ACKs, TLS/Noise framing, IP/TCP headers)")

    # (b)(c) netns
    body = []
    for r, label in (("ns-nginx-http", "nginx HTTP (1 host)"), ("ns-nginx-https", "nginx HTTPS (1 host)"),
                     ("ns-shoal", f"shoal get ({env('SEEDERS')} seeders)")):
        s = S[r]
        if not s:
            continue
        share = "-"
        if s.get("seeder_tx"):
            tot = sum(s["seeder_tx"]) or 1
            share = "/".join(f"{x * 100 / tot:.0f}" for x in s["seeder_tx"])
        body.append([label, wall(s), fmt(s.get("MB_s"), ".1f"), fmt(s.get("Mbit_s"), ".0f"),
                     fmt(s.get("wire_ratio"), ".3f"), share,
                     xf(ratio(s, ns_base)), status(s)])
    if body:
        table(f"(b, c) network namespaces, every source's uplink {env('RATE')} Mbit/s",
              ["row", "wall s", "MB/s", "Mbit/s", "wire/payload", "% per seeder", "vs nginx", "ok"], body)
        p("   wire = rx_bytes of the follower's eth0 over the fetch (all it received, headers included; its own "
          "requests and ACKs not counted) / payload bytes; % per seeder = each seeder's share of the bytes sent (eth0 tx)")

    # (d) small files
    body = []
    for r, label in (("small-nginx-http", "nginx HTTP"), ("small-nginx-https", "nginx HTTPS"), ("small-shoal", "shoal get (A -> B)")):
        s = S[r]
        if not s:
            continue
        body.append([label, wall(s), fmt(s.get("files_s"), ".0f"), fmt(s.get("MB_s"), ".1f"),
                     xf(ratio(s, sm_base, "files_s")), status(s)])
    if body:
        f0 = next(s for s in (S["small-shoal"], S["small-nginx-http"], S["small-nginx-https"]) if s and s.get("files"))
        table(f"(d) small files, loopback: {f0['files']} files of 1 B..16 KiB, {f0['bytes'] / 1e6:.1f} MB",
              ["row", "wall s", "files/s", "MB/s", "vs nginx", "ok"], body)

    # (e) ttfb
    if T:
        body = []
        for key, label in (("ttfb-nginx/http/warm", "nginx HTTP"), ("ttfb-nginx/https/warm", "nginx HTTPS"),
                           ("ttfb-shoal/http/cold", "shoal gateway, cold (fresh follower)"),
                           ("ttfb-shoal/http/warm", "shoal gateway, warm (in the follower's store)")):
            if key in T:
                base = T.get("ttfb-nginx/http/warm")
                body.append([label, fmt(T[key]["median_ms"], ".2f"), T[key]["n"],
                             fmt(T[key]["median_ms"] / base["median_ms"], ".1f") + "x" if base else "-",
                             " ".join(f"{x:.2f}" for x in T[key]["all_ms"])])
        table(f"(e) time to first byte, one {tsize} B file ({tpath}), loopback, curl %{{time_starttransfer}}",
              ["row", "median ms", "n", "vs nginx HTTP", "all ms"], body)
        p("   nginx and warm: each request a new curl (new TCP connection); cold: the first request to a fresh "
          "follower daemon connected to the seeder (path resolved and blocks fetched)")

    # (f) faults
    body = []
    for r in ("fault-kill", "fault-liar", "fault-stop"):
        s = S[r]
        if not s:
            continue
        extra = s.get("fault_target", "")
        if s.get("sync_violations") or s.get("peers_banned"):
            extra += f"; violations {s.get('sync_violations')}, banned {s.get('peers_banned')}"
        if s.get("peers_after") not in (None, ""):
            extra += f"; peers after {s['peers_after']}"
        share = "-"
        if s.get("seeder_tx"):
            tot = sum(s["seeder_tx"]) or 1
            share = "/".join(f"{x * 100 / tot:.0f}" for x in s["seeder_tx"])
        cost = (s["wall_s"] - clean["wall_s"]) if clean and clean.get("wall_s") and s.get("wall_s") else None
        body.append([r, wall(s), (f"{cost:+.2f}" if cost is not None else "-"),
                     fmt(s["wall_s"] / clean["wall_s"], ".2f") + "x" if cost is not None else "-",
                     fmt(s.get("wire_ratio"), ".3f"), share, status(s), extra])
    if body:
        table(f"(f) faults, netns ({env('SEEDERS')} seeders at {env('RATE')} Mbit/s); clean ns-shoal "
              f"{fmt(clean.get('wall_s') if clean else None)} s",
              ["row", "wall s", "cost s", "vs clean", "wire/payload", "% per seeder", "ok", "what"], body)

    p()
    p("targets")
    for t in targets:
        v = t["value"]
        vs = fmt(v, ".2f") + "x" if isinstance(v, float) else ("-" if v is None else str(v))
        p(f"  {t['what']}: {t['target']}: {vs} -> {'MET' if t['met'] else 'NOT MET'}")
    errs = sorted({e for s in S.values() if s for e in s["errors"]})
    if errs:
        p()
        p("errors (a wall in parentheses: median time until the error of a row whose runs all failed):")
        for e in errs:
            p(f"  {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
