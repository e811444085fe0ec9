#!/usr/bin/env python3
"""Turns bench/fetch's per-run records into the ratio table and results.json.

  report.py RUNS.jsonl RESULTS.json [--json]

RUNS.jsonl has one JSON object per run (all values strings, written by run.sh).
The rest comes from the environment (TREE_FILES, TREE_BYTES, ...; see run.sh).
Per contender: the median of each figure over its successful runs, the maximum
of the peak RSS figures.  Prints the table, or with --json the same figures as
JSON, on stdout; always writes RESULTS.json.
"""
import json
import os
import statistics
import sys

LABELS = {
    "nginx-http": "nginx HTTP",
    "nginx-https": "nginx HTTPS",
    "shoal-auto": "shoal default (--exchange auto)",
    "shoal-bitswap": "shoal bitswap (--exchange bitswap)",
    "shoal-sync": "shoal sync (--exchange sync)",
    "shoal-get": "shoal bitswap (only exchange in this build)",
    "shoal-pin": "shoal pin add (store only, no files written)",
}
MEDIAN = ["wall_s", "server_cpu_s", "client_cpu_s", "conns", "requests",
          "start_ms_a", "start_ms_b", "idle_rss_kib_a", "idle_rss_kib_b", "writeout_s"]
MAXIMUM = ["server_rss_kib", "client_rss_kib"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def summarize(name, runs, total, files):
    good = [r for r in runs if r.get("ok") == "1"]
    s = {"contender": name, "label": LABELS.get(name, name), "runs": len(runs),
         "ok_runs": len(good), "errors": [r["error"] for r in runs if r.get("ok") != "1"]}
    for k in MEDIAN + MAXIMUM:
        vals = [x for x in (num(r.get(k)) for r in good) if x is not None]
        if vals:
            s[k] = round(statistics.median(vals) if k in MEDIAN else max(vals), 3)
            if k in MEDIAN and len(vals) > 1:
                s[k + "_range"] = [min(vals), max(vals)]
    stats = [r["stats_file"] for r in good if r.get("stats_file")]
    if stats and os.path.exists(stats[-1]):  # daemon B's exchange counters, last good run
        try:
            with open(stats[-1], encoding="utf-8") as f:
                s["exchange_stats_b"] = json.load(f)
        except ValueError:
            pass
    w = s.get("wall_s")
    s["mb_per_s"] = round(total / w / 1e6, 1) if w else None
    s["files_per_s"] = round(files / w, 1) if w else None
    return s


def main(argv):
    runs_path, out_path = argv[0], argv[1]
    as_json = "--json" in argv[2:]
    E = os.environ
    total, files = int(E["TREE_BYTES"]), int(E["TREE_FILES"])
    runs = []
    if os.path.exists(runs_path):
        with open(runs_path, encoding="utf-8") as f:
            runs = [json.loads(line) for line in f if line.strip()]
    order = list(dict.fromkeys(r["contender"] for r in runs))
    rows = [summarize(n, [r for r in runs if r["contender"] == n], total, files) for n in order]
    https = next((r for r in rows if r["contender"] == "nginx-https"), {}).get("wall_s")
    for r in rows:
        w = r.get("wall_s")
        r["throughput_x_https"] = round(https / w, 3) if https and w else None
    out = {
        "tree": {"files": files, "bytes": total, "params": E.get("PARAMS", ""),
                 "root_cid": E.get("ROOT_CID", ""), "add_nocopy_s": num(E.get("ADD_S"))},
        "machine": {"nproc": int(E.get("NPROC", "0")), "cpu": E.get("CPU", "")},
        "commit": E.get("COMMIT", ""), "shoal": E.get("SHOAL_DESC", ""),
        "nginx": E.get("NGINX_DESC", ""), "client": E.get("CLIENT_DESC", ""),
        "runs_per_contender": int(E.get("RUNS", "0")), "results": rows,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    if as_json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 1 if any(r["errors"] for r in rows) else 0

    f1 = lambda v, spec: "n/a" if v is None else format(v, spec)
    mib = lambda k: None if k is None else k / 1024
    print(f"tree:    {files} files, {total} bytes ({total / 2**30:.2f} GiB); {E.get('PARAMS', '')}")
    print(f"machine: nproc={E.get('NPROC', '')}, {E.get('CPU', '')}")
    print(f"commit:  {E.get('COMMIT', '')}; shoal: {E.get('SHOAL_DESC', '')}")
    print(f"servers: {E.get('NGINX_DESC', '')}")
    print(f"client:  {E.get('CLIENT_DESC', '')}")
    print(f"runs:    median of {E.get('RUNS', '?')} per contender (peak RSS: max); before each, "
          "dirty data synced, page cache dropped, source tree read back in\n")
    lw = max([len("contender")] + [len(r["label"]) for r in rows])
    head = (f"{'contender':<{lw}}{'wall s':>9}{'MB/s':>9}{'files/s':>9}{'x HTTPS':>9}"
            f"{'srv CPU s':>11}{'cli CPU s':>11}{'srv RSS MiB':>13}{'cli RSS MiB':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if not r["ok_runs"]:
            print(f"{r['label']:<{lw}}  FAILED ({r['runs']} runs): {r['errors'][0][:120]}")
            continue
        print(f"{r['label']:<{lw}}{f1(r.get('wall_s'), '.2f'):>9}{f1(r['mb_per_s'], '.1f'):>9}"
              f"{f1(r['files_per_s'], '.0f'):>9}{f1(r['throughput_x_https'], '.2f'):>9}"
              f"{f1(r.get('server_cpu_s'), '.2f'):>11}{f1(r.get('client_cpu_s'), '.2f'):>11}"
              f"{f1(mib(r.get('server_rss_kib')), '.1f'):>13}{f1(mib(r.get('client_rss_kib')), '.1f'):>13}")
    print("\nx HTTPS = throughput / nginx HTTPS throughput (nginx HTTPS wall / wall; > 1 is faster).")
    print("srv = nginx master+workers, or daemon A; cli = curl, or daemon B + the `shoal` CLI call.")
    for r in rows:
        if r["contender"].startswith("nginx") and r.get("conns") is not None:
            print(f"{r['label']}: {r['conns']:.0f} connections for {r.get('requests', 0):.0f} requests "
                  "(keep-alive reuse, from nginx stub_status)")
    shoal = [r for r in rows if r["contender"].startswith("shoal") and r["ok_runs"]]
    if shoal:
        pick = lambda k: [r[k] for r in shoal if r.get(k) is not None]
        med = lambda k: statistics.median(pick(k)) if pick(k) else None
        rng = lambda k: (min(pick(k)), max(pick(k))) if pick(k) else (None, None)
        lo, hi = rng("start_ms_b")
        print(f"start to listening (spawn until `shoal id` answers): daemon B (empty store) "
              f"{f1(med('start_ms_b'), '.0f')} ms [{f1(lo, '.0f')}-{f1(hi, '.0f')}], "
              f"daemon A (tree added) {f1(med('start_ms_a'), '.0f')} ms")
        print(f"idle RSS (VmRSS 2 s after start): daemon B (empty store) "
              f"{f1(mib(med('idle_rss_kib_b')), '.1f')} MiB, daemon A (tree added) "
              f"{f1(mib(med('idle_rss_kib_a')), '.1f')} MiB")
    pin = next((r for r in rows if r["contender"] == "shoal-pin" and r.get("writeout_s")), None)
    if pin:
        w = pin["writeout_s"]
        print(f"after pin add, `shoal get` from B's own store (no network): {w:.2f} s "
              f"({total / w / 1e6:.1f} MB/s)")
    for r in rows:
        st = r.get("exchange_stats_b")
        if isinstance(st, dict):
            parts = [f"{k} {v['blocks_received']} blocks" for k, v in st.items()
                     if isinstance(v, dict) and "blocks_received" in v]
            if parts:
                print(f"received by B ({r['label']}, last run, `shoal stats`): {', '.join(parts)}")
    if E.get("ADD_S"):
        print(f"setup: `shoal add -r --nocopy` on A took {float(E['ADD_S']):.2f} s; root {E.get('ROOT_CID', '')}")
    for r in rows:
        for e in dict.fromkeys(r["errors"]):
            print(f"ERROR {r['label']}: {e}")
    print(f"results: {out_path}")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
