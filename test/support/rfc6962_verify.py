"""A second, independent check of qmkd's audit proofs: RFC 6962 hashing and the RFC 9162
section 2.1.3.2 / 2.1.4.2 verification algorithms, with nothing but hashlib.

Reads one JSON object on stdin and prints `ok` (exit 0) or `FAIL: why` (exit 1):
  {"kind": "inclusion", "index": i, "size": n, "leaf_input": hex, "path": [hex...], "root": hex}
  {"kind": "consistency", "size1": m, "size2": n, "proof": [hex...], "root1": hex, "root2": hex}
"""
import hashlib
import json
import sys


def leaf(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion(index, size, leaf_hash, path, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistency(size1, size2, proof, root1, root2):
    if size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1] + proof
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


def main():
    q = json.load(sys.stdin)
    h = bytes.fromhex
    if q["kind"] == "inclusion":
        ok = inclusion(q["index"], q["size"], leaf(h(q["leaf_input"])),
                       [h(p) for p in q["path"]], h(q["root"]))
    elif q["kind"] == "consistency":
        ok = consistency(q["size1"], q["size2"], [h(p) for p in q["proof"]],
                         h(q["root1"]), h(q["root2"]))
    else:
        print("FAIL: unknown kind " + q["kind"])
        return 1
    print("ok" if ok else "FAIL: the proof does not verify")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
