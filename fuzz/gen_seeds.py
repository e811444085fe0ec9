#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/seeds/<target>/ (a few small valid
inputs per target). Deterministic; standard library only. Run from anywhere:
    python3 fuzz/gen_seeds.py
"""
import base64
import hashlib
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")

RAW, DAG_PB, SHA2_256, IDENTITY = 0x55, 0x70, 0x12, 0x00


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def multihash(code, digest):
    return varint(code) + varint(len(digest)) + digest


def cid_v1(codec, data, hash_code=SHA2_256):
    digest = hashlib.sha256(data).digest() if hash_code == SHA2_256 else data
    return varint(1) + varint(codec) + multihash(hash_code, digest)


def cid_v0(data):
    return multihash(SHA2_256, hashlib.sha256(data).digest())


B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(b):
    n = int.from_bytes(b, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = B58[r] + s
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + s


def cid_str(cid):
    if cid[0] == SHA2_256:  # v0
        return base58(cid)
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


# --- protobuf helpers ------------------------------------------------------
def field_bytes(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def pb_link(cid, name=None, tsize=None):
    out = field_bytes(1, cid)
    if name is not None:
        out += field_bytes(2, name.encode())
    if tsize is not None:
        out += field_varint(3, tsize)
    return out


def pb_node(links, data=None):
    out = b"".join(field_bytes(2, l) for l in links)
    if data is not None:
        out += field_bytes(1, data)
    return out


def unixfs(kind, data=b"", filesize=None, blocksizes=(), hash_type=None,
           fanout=None, mode=None, mtime=None, packed=False):
    out = field_varint(1, kind)
    if data:
        out += field_bytes(2, data)
    if filesize is not None:
        out += field_varint(3, filesize)
    if packed and blocksizes:
        out += field_bytes(4, b"".join(varint(b) for b in blocksizes))
    else:
        for b in blocksizes:
            out += field_varint(4, b)
    if hash_type is not None:
        out += field_varint(5, hash_type)
    if fanout is not None:
        out += field_varint(6, fanout)
    if mode is not None:
        out += field_varint(7, mode)
    if mtime is not None:
        secs, nsecs = mtime
        t = field_varint(1, secs & (2**64 - 1))
        if nsecs:
            t += varint(2 << 3 | 5) + nsecs.to_bytes(4, "little")
        out += field_bytes(8, t)
    return out


# --- CAR v1 ---------------------------------------------------------------
def cbor_head(major, n):
    m = major << 5
    if n < 24:
        return bytes([m | n])
    if n < 0x100:
        return bytes([m | 24, n])
    if n < 0x10000:
        return bytes([m | 25]) + n.to_bytes(2, "big")
    return bytes([m | 26]) + n.to_bytes(4, "big")


def car(roots, blocks):
    header = bytes([0xA2]) + cbor_head(3, 5) + b"roots" + cbor_head(4, len(roots))
    for r in roots:
        header += bytes([0xD8, 42]) + cbor_head(2, len(r) + 1) + b"\0" + r
    header += cbor_head(3, 7) + b"version" + b"\x01"
    out = varint(len(header)) + header
    for cid, data in blocks:
        out += varint(len(cid) + len(data)) + cid + data
    return out


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 10 * 1024, (target, name, len(data))
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)

    hello = b"hello world"
    hello_cid = cid_v1(RAW, hello)
    assert cid_str(hello_cid) == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    chunks = [bytes([i]) * (100 * i + 1) for i in range(1, 4)]
    chunk_cids = [cid_v1(RAW, c) for c in chunks]

    # UnixFS Data messages
    dir_data = unixfs(1)
    file_root_data = unixfs(2, filesize=sum(map(len, chunks)), blocksizes=[len(c) for c in chunks])
    leaf_data = unixfs(2, data=hello, filesize=len(hello))
    hamt_data = unixfs(5, data=bytes([0b1010_0101, 0x01]), hash_type=0x22, fanout=256)
    meta_data = unixfs(2, filesize=0, mode=0o755, mtime=(1_700_000_000, 5))
    symlink_data = unixfs(4, data=b"../target")

    # dag-pb blocks
    directory = pb_node(
        [pb_link(hello_cid, "hello.txt", len(hello)),
         pb_link(chunk_cids[0], "a", len(chunks[0])),
         pb_link(cid_v0(b"sub"), "sub dir", 42)],
        dir_data,
    )
    file_root = pb_node([pb_link(c, "", len(d)) for c, d in zip(chunk_cids, chunks)], file_root_data)
    leaf_v0 = pb_node([], leaf_data)
    bare_links = pb_node([pb_link(hello_cid), pb_link(cid_v1(DAG_PB, b"x"), tsize=1)])
    hamt = pb_node([pb_link(hello_cid, "0Ahello.txt", 11), pb_link(chunk_cids[1], "F3", 7)], hamt_data)

    write("dagpb_decode", "directory", directory)
    write("dagpb_decode", "file_root", file_root)
    write("dagpb_decode", "leaf_v0", leaf_v0)
    write("dagpb_decode", "links_only", bare_links)
    write("dagpb_decode", "hamt_shard", hamt)
    write("dagpb_decode", "empty", b"")

    # CARs
    dir_cid = cid_v1(DAG_PB, directory)
    blocks = [(dir_cid, directory), (hello_cid, hello)] + list(zip(chunk_cids, chunks))
    write("car_reader", "dir_tree.car", car([dir_cid], blocks))
    write("car_reader", "v0_leaf.car", car([cid_v0(leaf_v0)], [(cid_v0(leaf_v0), leaf_v0)]))
    write("car_reader", "no_roots_no_blocks.car", car([], []))
    ident = cid_v1(RAW, b"inline", IDENTITY)
    write("car_reader", "identity_two_roots.car", car([ident, hello_cid], [(ident, b"inline"), (hello_cid, hello)]))

    # CID / path strings and CID bytes
    v1 = cid_str(hello_cid)
    write("cid_path_parse", "v1_path", v1 + "/a/b")
    write("cid_path_parse", "v0", "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
    write("cid_path_parse", "ipfs_prefix", "/ipfs/" + cid_str(dir_cid) + "/hello.txt/")
    write("cid_path_parse", "v1_base58_path", "z" + base58(dir_cid) + "//sub dir/x.y")
    write("cid_path_parse", "v1_base16", "f" + hello_cid.hex())
    write("cid_path_parse", "v1_base64url", "u" + base64.urlsafe_b64encode(ident).decode().rstrip("="))
    write("cid_path_parse", "v0_deep", cid_str(cid_v0(b"sub")) + "/" + "/".join("d%d" % i for i in range(20)))
    write("cid_path_parse", "bytes_v1", hello_cid)
    write("cid_path_parse", "bytes_v0", cid_v0(b"sub"))

    # UnixFS Data messages
    write("unixfs_data", "directory", dir_data)
    write("unixfs_data", "file_root", file_root_data)
    write("unixfs_data", "file_leaf", leaf_data)
    write("unixfs_data", "hamt_shard", hamt_data)
    write("unixfs_data", "mode_mtime", meta_data)
    write("unixfs_data", "symlink", symlink_data)
    write("unixfs_data", "packed_blocksizes", unixfs(2, blocksizes=[262144, 45056], packed=True))
    write("unixfs_data", "raw", unixfs(0, data=b"\x00\x01", filesize=2))


if __name__ == "__main__":
    main()
