#!/usr/bin/env python3
"""Tree manifests for bench/fetch: record a tree, check a copy, list its URLs.

  manifest.py make  DIR MANIFEST           sha256, size and path of every file
  manifest.py check MANIFEST DIR           DIR holds exactly those files (exit 1 if not)
  manifest.py curl  MANIFEST BASE_URL OUT  a curl -K config fetching every file to OUT/path

MANIFEST lines are `sha256<TAB>size<TAB>relative/path`, sorted by path.
Hashing runs in as many threads as there are cores (hashlib releases the GIL).
"""
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

BUF = 1 << 20


def files_under(root):
    """Relative paths of everything but directories under root (symlinks too)."""
    out = []
    for d, dirs, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(d, n), root))
        for n in dirs:  # os.walk does not descend into symlinked dirs: count them
            p = os.path.join(d, n)
            if os.path.islink(p):
                out.append(os.path.relpath(p, root))
    return sorted(out)


def digest(path):
    if os.path.islink(path) or not os.path.isfile(path):
        return None, None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(BUF)
            if not b:
                break
            h.update(b)
    return h.hexdigest(), os.path.getsize(path)


def hash_all(root, rels):
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as ex:
        return list(ex.map(lambda r: digest(os.path.join(root, r)), rels))


def read_manifest(path):
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            h, size, rel = line.rstrip("\n").split("\t", 2)
            entries.append((h, int(size), rel))
    return entries


def make(root, manifest):
    rels = files_under(root)
    tmp = manifest + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for rel, (h, size) in zip(rels, hash_all(root, rels)):
            if h is None:
                sys.exit(f"manifest.py: not a regular file: {rel}")
            f.write(f"{h}\t{size}\t{rel}\n")
    os.replace(tmp, manifest)


def check(manifest, root):
    want = read_manifest(manifest)
    if not os.path.isdir(root):
        print(f"missing output directory {root}")
        return 1
    have = set(files_under(root))
    problems = [f"extra file: {r}" for r in sorted(have - {rel for _, _, rel in want})]
    present = [e for e in want if e[2] in have]
    problems += [f"missing file: {rel}" for _, _, rel in want if rel not in have]
    for (h, size, rel), (gh, gsize) in zip(present, hash_all(root, [e[2] for e in present])):
        if gh is None:
            problems.append(f"not a regular file: {rel}")
        elif gsize != size:
            problems.append(f"size {gsize} != {size}: {rel}")
        elif gh != h:
            problems.append(f"sha256 differs: {rel}")
    if problems:
        print(f"{len(problems)} problem(s); first: " + "; ".join(problems[:5]))
        return 1
    print(f"ok: {len(want)} files, {sum(s for _, s, _ in want)} bytes")
    return 0


def curl_config(manifest, base, out):
    esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')
    for _, _, rel in read_manifest(manifest):
        print(f'url = "{esc(base.rstrip("/") + "/" + quote(rel))}"')
        print(f'output = "{esc(os.path.join(out, rel))}"')


def main(argv):
    if len(argv) == 3 and argv[0] == "make":
        make(argv[1], argv[2])
        return 0
    if len(argv) == 3 and argv[0] == "check":
        return check(argv[1], argv[2])
    if len(argv) == 4 and argv[0] == "curl":
        curl_config(argv[1], argv[2], argv[3])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
