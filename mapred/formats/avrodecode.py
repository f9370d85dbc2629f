"""A writer's Avro schema compiled into a function that decodes a whole block of records.

fastavro decodes a record by walking the schema for every value, and a union
(``["null", "long"]``, which is how nullable columns are written, ours
included) costs it as much again: a table of five nullable columns decodes at
about 250K records/s.  Most files hold flat or lightly nested records of
primitives, so the reader compiles the file's schema once into straight-line
Python (a varint is a few byte operations, a union branch an ``if``) that
decodes a block's bytes in one call, about 2.5 times faster.

``compile_decoder(schema)`` returns ``decode(data, count) -> records`` or
``None`` when the schema uses anything it does not know (logical types, named
references, recursion, unions of more than 63 branches): those files are
decoded by fastavro, which stays the reference.  A decoder is strict where
fastavro is lenient: a block whose records do not use exactly its bytes, or
that runs past its end, is an error (a broken block), never a short read.
"""
from __future__ import annotations

import functools
import json
import struct
from collections.abc import Callable

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
MAX_UNION = 63          # a union index of 0..62 is one byte of zig-zag varint
MAX_DEPTH = 8


class _Unsupported(Exception):
    """The schema has a construct the compiler leaves to fastavro."""


class _Emitter:
    """Python source for one schema: statements that decode a value into a variable."""

    def __init__(self) -> None:
        self.n = 0
        self.consts: dict[str, object] = {}

    def var(self) -> str:
        self.n += 1
        return f"v{self.n}"

    def const(self, value) -> str:
        name = f"c{len(self.consts)}"
        self.consts[name] = value
        return name

    def long(self, dst: str, p: str) -> list[str]:
        """A zig-zag varint (int and long) into ``dst``; the one-byte case needs no loop."""
        return [f"{p}b = data[i]",
                f"{p}i += 1",
                f"{p}if b < 128:",
                f"{p}    {dst} = (b >> 1) ^ -(b & 1)",
                f"{p}else:",
                f"{p}    r = b & 127",
                f"{p}    s = 7",
                f"{p}    while True:",
                f"{p}        b = data[i]",
                f"{p}        i += 1",
                f"{p}        r |= (b & 127) << s",
                f"{p}        if b < 128:",
                f"{p}            break",
                f"{p}        s += 7",
                f"{p}        if s > 63:",
                f"{p}            raise ValueError('a varint longer than 10 bytes')",
                f"{p}    {dst} = (r >> 1) ^ -(r & 1)"]

    def value(self, t, dst: str, p: str, depth: int = 0) -> list[str]:
        if depth > MAX_DEPTH:
            raise _Unsupported("nested too deep")
        if isinstance(t, dict):
            if "logicalType" in t:
                raise _Unsupported("logical types are fastavro's")
            kind = t.get("type")
            if kind in PRIMITIVES:
                return self.value(kind, dst, p, depth)
            if kind == "record":
                return self.record(t, dst, p, depth)
            if kind == "array":
                return self.array(t["items"], dst, p, depth)
            if kind == "map":
                return self.map(t["values"], dst, p, depth)
            if kind == "enum":
                return self.enum(t["symbols"], dst, p)
            if kind == "fixed":
                size = int(t["size"])
                return [f"{p}{dst} = data[i:i + {size}]", f"{p}i += {size}"]
            raise _Unsupported(f"type {kind!r}")
        if isinstance(t, list):
            return self.union(t, dst, p, depth)
        if t == "null":
            return [f"{p}{dst} = None"]
        if t == "boolean":
            return [f"{p}{dst} = data[i] != 0", f"{p}i += 1"]
        if t in ("int", "long"):
            return self.long(dst, p)
        if t in ("float", "double"):
            size, fmt = (4, "unpack_f") if t == "float" else (8, "unpack_d")
            return [f"{p}{dst} = {fmt}(data, i)[0]", f"{p}i += {size}"]
        if t in ("bytes", "string"):
            n = self.var()
            out = self.long(n, p) + [f"{p}if {n} < 0 or i + {n} > end:",
                                     f"{p}    raise ValueError('a length runs past the end of the block')"]
            take = f"data[i:i + {n}]"
            out.append(f"{p}{dst} = {take}.decode()" if t == "string" else f"{p}{dst} = {take}")
            return out + [f"{p}i += {n}"]
        raise _Unsupported(f"named type reference {t!r}")

    def union(self, branches: list, dst: str, p: str, depth: int) -> list[str]:
        if not branches or len(branches) > MAX_UNION:
            raise _Unsupported("union size")
        k = self.var()
        out = [f"{p}{k} = data[i]", f"{p}i += 1"]
        order = sorted(range(len(branches)), key=lambda j: branches[j] == "null")   # values before nulls
        for n, j in enumerate(order):
            out.append(f"{p}{'if' if n == 0 else 'elif'} {k} == {2 * j}:")
            out += self.value(branches[j], dst, p + "    ", depth + 1)
        return out + [f"{p}else:", f"{p}    raise ValueError(f'union index byte {{{k}}} is not a branch')"]

    def record(self, t: dict, dst: str, p: str, depth: int) -> list[str]:
        out, items = [], []
        for f in t["fields"]:
            v = self.var()
            out += self.value(f["type"], v, p, depth + 1)
            items.append(f"{f['name']!r}: {v}")
        return out + [f"{p}{dst} = {{{', '.join(items)}}}"]

    def _blocks(self, p: str, body: Callable[[str], list[str]]) -> list[str]:
        """Avro's array/map encoding: blocks of ``count`` items (negative: a byte size follows) until 0."""
        c, skip = self.var(), self.var()
        return ([f"{p}while True:"] + self.long(c, p + "    ")
                + [f"{p}    if {c} == 0:", f"{p}        break", f"{p}    if {c} < 0:", f"{p}        {c} = -{c}"]
                + self.long(skip, p + "        ")
                + [f"{p}    for _ in range({c}):"] + body(p + "        "))

    def array(self, items, dst: str, p: str, depth: int) -> list[str]:
        acc, item = self.var(), self.var()
        return [f"{p}{acc} = []"] + self._blocks(
            p, lambda q: self.value(items, item, q, depth + 1) + [f"{q}{acc}.append({item})"]) + [f"{p}{dst} = {acc}"]

    def map(self, values, dst: str, p: str, depth: int) -> list[str]:
        acc, key, item = self.var(), self.var(), self.var()
        return [f"{p}{acc} = {{}}"] + self._blocks(
            p, lambda q: self.value("string", key, q) + self.value(values, item, q, depth + 1)
            + [f"{q}{acc}[{key}] = {item}"]) + [f"{p}{dst} = {acc}"]

    def enum(self, symbols: list, dst: str, p: str) -> list[str]:
        table, k = self.const(tuple(symbols)), self.var()
        return self.long(k, p) + [f"{p}if {k} < 0:", f"{p}    raise ValueError('a negative enum index')",
                                  f"{p}{dst} = {table}[{k}]"]


def compile_decoder(schema) -> Callable[[bytes, int], list] | None:
    """``decode(block bytes, record count) -> list of records`` for a writer's schema, or ``None``."""
    text = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
    return _compiled(text)


@functools.lru_cache(maxsize=64)
def _compiled(text: str):
    schema = json.loads(text)
    e = _Emitter()
    try:
        body = e.value(schema, "rec", "        ")
    except (_Unsupported, KeyError, TypeError, ValueError):
        return None
    src = "\n".join(["def decode(data, count):",
                     "    out = []",
                     "    append = out.append",
                     "    i, end = 0, len(data)",
                     "    for _ in range(count):",
                     *body,
                     "        append(rec)",
                     "    if i != end:",
                     "        raise ValueError(f'{count} records use {i} of the block\\'s {end} bytes')",
                     "    return out"])
    namespace = {"unpack_f": struct.Struct("<f").unpack_from, "unpack_d": struct.Struct("<d").unpack_from,
                 **e.consts}
    exec(compile(src, "<avro decoder>", "exec"), namespace)   # noqa: S102 - our own source; names are repr()'d
    return namespace["decode"]
