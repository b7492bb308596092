#!/usr/bin/env python3
"""Writes the pickle fixtures of sessionkit-cache's pickle reader tests.

    python3 scripts/make_pickle_fixtures.py

engines/stores/cache/tests/pickles/good/NAME.pickle holds `pickle.dumps` of a session-like dict
(NAME.json beside it: the dict as JSON, what the reader must return); .../hostile/NAME.pickle
holds a pickle the reader must refuse (globals, calls, bytes, sets, huge lengths, deep nesting,
memo bombs). The same files seed the `pickle_dict` fuzz corpus (fuzz/corpus/pickle_dict/).
Run with any Python 3.8+ (protocol 5); nothing here is ever unpickled.
"""

import json
import os
import pickle
import shutil
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "engines", "stores", "cache", "tests", "pickles")
CORPUS = os.path.join(ROOT, "fuzz", "corpus", "pickle_dict")


def good_cases():
    django_login = {
        "_auth_user_id": "42",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b5aa765d61d8327deb882cf99",
        "_session_expiry": 3600,
    }
    ints = {
        "zero": 0,
        "byte": 255,
        "short": 256,
        "short_max": 65535,
        "int": 65536,
        "minus": -1,
        "i32_max": 2**31 - 1,
        "i32_min": -(2**31),
        "past_i32": 2**31,
        "below_i32": -(2**31) - 1,
        "i64_max": 2**63 - 1,
        "i64_min": -(2**63),
        "u64_max": 2**64 - 1,
    }
    mixed = {
        "cart": [{"sku": "A-1", "qty": 2, "price": 9.99}, {"sku": "B-2", "qty": 1, "price": 0.5}],
        "flags": [True, False, None],
        "tuple": (1, "two", 3.0),
        "empty": {"list": [], "dict": {}, "tuple": (), "str": ""},
        "unicode": "h\u00e9llo w\u00f6rld \u2603 \U0001f600",
        "float": -1.5e-300,
        "long_str": "x" * 300,
    }
    shared_list = [1, 2, 3]
    shared = {"a": shared_list, "b": shared_list, "c": {"inner": shared_list}}
    # json.loads reuses key objects, so Python writes repeated keys as memo references.
    from_json = json.loads('{"k": {"same": 1}, "l": {"same": 2}, "m": [{"same": 3}]}')
    many = {f"key{i}": i for i in range(2500)}
    big = {"blob": "y" * 66000, "after": "z" * 100, "n": 1}
    deep = {}
    node = deep
    for _ in range(100):
        node["d"] = {}
        node = node["d"]
    cases = {
        "empty": {},
        "django_login": django_login,
        "ints": ints,
        "mixed": mixed,
        "shared": shared,
        "from_json": from_json,
        "many_items": many,
        "big_frames": big,
        "deep_100": deep,
    }
    out = {}
    for name, value in cases.items():
        out[f"{name}-p5"] = (pickle.dumps(value, 5), value)
    # Protocol 1 is the binary opcodes of protocol 2 without PROTO, read as well (but its
    # bools are text INT opcodes, refused).
    out["django_login-p1"] = (pickle.dumps(django_login, 1), django_login)
    for protocol in (2, 3, 4):
        out[f"django_login-p{protocol}"] = (pickle.dumps(django_login, protocol), django_login)
        out[f"mixed-p{protocol}"] = (pickle.dumps(mixed, protocol), mixed)
    return out


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def hostile_cases():
    import datetime

    cases = {
        "os_system_reduce": pickle.dumps({"x": Evil()}, 5),
        "os_system_reduce_p2": pickle.dumps({"x": Evil()}, 2),
        "datetime": pickle.dumps({"when": datetime.datetime(2026, 1, 1)}, 5),
        "set": pickle.dumps({"s": {1, 2}}, 5),
        "frozenset": pickle.dumps({"s": frozenset([1])}, 5),
        "bytes": pickle.dumps({"b": b"raw"}, 5),
        "bytearray": pickle.dumps({"b": bytearray(b"raw")}, 5),
        "int_2_64": pickle.dumps({"n": 2**64}, 5),
        "int_2_100": pickle.dumps({"n": 2**100}, 5),
        "int_negative_2_70": pickle.dumps({"n": -(2**70)}, 5),
        "nan": pickle.dumps({"f": float("nan")}, 5),
        "infinity": pickle.dumps({"f": float("inf")}, 5),
        "int_key": pickle.dumps({1: "a"}, 5),
        "not_a_dict": pickle.dumps(["a", "list"], 5),
        "protocol_0": pickle.dumps({"a": 1}, 0),
        # A BINUNICODE8 claiming 2**62 bytes: refused before any allocation.
        "huge_binunicode8": b"\x80\x05}\x94\x8c\x01k\x94\x8d" + struct.pack("<Q", 2**62) + b"abc",
        "huge_binunicode": b"\x80\x05}\x94\x8c\x01k\x94X" + struct.pack("<I", 2**32 - 1) + b"abc",
        "huge_frame": b"\x80\x05\x95" + struct.pack("<Q", 2**63) + b"}.",
        "huge_long1": b"\x80\x05}\x94\x8c\x01k\x94\x8a\xff" + b"\x01" * 10,
        "huge_memo_index": b"\x80\x05}r" + struct.pack("<I", 2**32 - 1) + b".",
        "truncated": pickle.dumps({"a": "b" * 50}, 5)[:-10],
        "no_stop": pickle.dumps({"a": 1}, 5)[:-1],
        "deep_10000": b"\x80\x05}(\x8c\x01k" + b"]" * 10000 + b"a" * 9999 + b"u.",
        "nested_lists_200": pickle.dumps({"d": nested(200)}, 5),
        "surrogate": pickle.dumps({"s": "\ud800"}, 5),
        "get_unset_memo": b"\x80\x05}h\x07.",
        "append_to_dict": b"\x80\x05}K\x01a.",
    }
    recursive = []
    recursive.append(recursive)
    cases["recursive_list"] = pickle.dumps({"r": recursive}, 5)
    recursive_dict = {}
    recursive_dict["self"] = recursive_dict
    cases["recursive_dict"] = pickle.dumps(recursive_dict, 5)
    # A memo bomb: level i is a list holding level i-1 ten times (by memo reference), so 30
    # levels are 10**30 strings once expanded. A few hundred bytes of input.
    # Memo 0 the dict, 1 its key, 2 the string, 2 + L level L.
    bomb = bytearray(b"\x80\x05}\x94(\x8c\x01k\x94\x8c\x04boom\x940")
    for level in range(1, 31):
        bomb += b"]\x94("
        bomb += (b"h" + bytes([level + 1])) * 10
        bomb += b"e0"
    bomb += b"h" + bytes([32]) + b"u."
    cases["memo_bomb"] = bytes(bomb)
    return cases


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "good"))
    os.makedirs(os.path.join(OUT, "hostile"))
    shutil.rmtree(CORPUS, ignore_errors=True)
    os.makedirs(CORPUS)
    for name, (data, value) in good_cases().items():
        with open(os.path.join(OUT, "good", name + ".pickle"), "wb") as f:
            f.write(data)
        with open(os.path.join(OUT, "good", name + ".json"), "w") as f:
            json.dump(value, f, ensure_ascii=False)
        if len(data) <= 8192:
            with open(os.path.join(CORPUS, "good-" + name), "wb") as f:
                f.write(data)
    for name, data in hostile_cases().items():
        with open(os.path.join(OUT, "hostile", name + ".pickle"), "wb") as f:
            f.write(data)
        with open(os.path.join(CORPUS, "hostile-" + name), "wb") as f:
            f.write(data[:8192])
    print(f"wrote fixtures to {OUT} with Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
