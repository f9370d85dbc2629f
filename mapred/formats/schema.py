"""Record schemas: given (``"id:int,name:str"``, an Avro schema, a JSON file) or inferred from records.

A ``Schema`` is an ordered list of ``Field(name, type)`` where ``type`` is one
of ``TYPES`` or, for nested values, ``("list", T)`` / ``("struct", Schema)``;
every field may be null.  Parquet and Avro writers turn it into their own
schema (``to_arrow`` / ``to_avro``); CSV uses it for column order and types.
Inference looks at the first records a task writes (``int`` widens to
``float``; any other mix is an error asking for a schema); a later record
that does not fit is a bad record with the field named, never a silent cast.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from mapred.errors import ConfigError

TYPES = ("int", "float", "str", "bool", "bytes", "null")
_ALIASES = {"int": "int", "long": "int", "int64": "int", "integer": "int", "float": "float", "double": "float",
            "float64": "float", "str": "str", "string": "str", "utf8": "str", "bool": "bool", "boolean": "bool",
            "bytes": "bytes", "binary": "bytes", "null": "null"}


@dataclass(frozen=True)
class Field:
    """One named, typed column of a schema."""
    name: str
    type: Any      # a TYPES name, ("list", type) or ("struct", Schema)


@dataclass(frozen=True)
class Schema:
    """An ordered list of fields, shared by every format's reader and writer."""
    fields: tuple

    @property
    def names(self) -> list[str]:
        """The field names in order."""
        return [f.name for f in self.fields]

    def to_wire(self) -> list:
        """The schema as plain lists, for job settings."""
        return [[f.name, _type_to_wire(f.type)] for f in self.fields]

    @classmethod
    def from_wire(cls, data) -> Schema:
        """The schema back from ``to_wire``'s lists."""
        return cls(tuple(Field(str(n), _type_from_wire(t)) for n, t in data))


def _type_to_wire(t):
    if isinstance(t, tuple):
        return [t[0], t[1].to_wire() if t[0] == "struct" else _type_to_wire(t[1])]
    return t


def _type_from_wire(t):
    if isinstance(t, (list, tuple)):
        return ("struct", Schema.from_wire(t[1])) if t[0] == "struct" else ("list", _type_from_wire(t[1]))
    return str(t)


def parse(spec) -> Schema | None:
    """A schema from what a user gives: a ``Schema``, ``"a:int,b:str"``, a dict/JSON/file of Avro schema."""
    if spec is None or isinstance(spec, Schema):
        return spec
    if isinstance(spec, (list, tuple)):
        return Schema(tuple(Field(str(n), _type_name(t)) for n, t in spec))
    if isinstance(spec, dict):
        return from_avro(spec)
    text = str(spec).strip()
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            text = f.read().strip()
    if text.startswith("{"):
        try:
            return from_avro(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"schema is not valid JSON: {exc}") from None
    fields = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, colon, typ = item.partition(":")
        if not colon or not name:
            raise ConfigError(f"schema field {item!r} is not NAME:TYPE (types: int, float, str, bool, bytes)")
        fields.append(Field(name.strip(), _type_name(typ.strip())))
    if not fields:
        raise ConfigError("the schema names no fields")
    return Schema(tuple(fields))


def _type_name(t) -> Any:
    if isinstance(t, tuple):
        return t
    name = _ALIASES.get(str(t).lower())
    if name is None:
        raise ConfigError(f"unknown field type {t!r} (known: int, float, str, bool, bytes)")
    return name


def from_avro(schema: dict) -> Schema:
    """Our schema of an Avro record schema (unions with null become nullable fields)."""
    if schema.get("type") != "record":
        raise ConfigError(f"an Avro schema here must be a record, got type {schema.get('type')!r}")
    return Schema(tuple(Field(f["name"], _from_avro_type(f["type"])) for f in schema["fields"]))


_AVRO_PRIMS = {"long": "int", "int": "int", "double": "float", "float": "float", "string": "str",
               "boolean": "bool", "bytes": "bytes", "null": "null"}


def _from_avro_type(t):
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        return _from_avro_type(rest[0]) if rest else "null"
    if isinstance(t, dict):
        if t.get("type") == "array":
            return ("list", _from_avro_type(t["items"]))
        if t.get("type") == "record":
            return ("struct", from_avro(t))
        return _from_avro_type(t.get("type"))
    if t in _AVRO_PRIMS:
        return _AVRO_PRIMS[t]
    raise ConfigError(f"Avro type {t!r} is not supported here")


# ----------------------------------------------------------------------------- inference
def type_of(value: Any):
    """The schema type of one Python value (``None`` → ``"null"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (list, tuple)):
        item = "null"
        for v in value:
            item = merge(item, type_of(v))
        return ("list", item)
    if isinstance(value, dict):
        return ("struct", infer([value]))
    if hasattr(value, "item"):          # numpy scalars
        return type_of(value.item())
    raise ConfigError(f"a value of type {type(value).__name__} has no schema type")


def merge(a, b):
    """The type that holds both; ``None`` when they do not fit together."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    if {a, b} == {"int", "float"}:
        return "float"
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0]:
        if a[0] == "list":
            inner = merge(a[1], b[1])
            return None if inner is None else ("list", inner)
        return ("struct", merge_schemas(a[1], b[1]))
    return None


def merge_schemas(a: Schema, b: Schema) -> Schema:
    """``a`` widened by ``b``: new fields appended, shared ones widened (to ``str`` when they clash)."""
    types = {f.name: f.type for f in a.fields}
    order = list(types)
    for f in b.fields:
        if f.name not in types:
            types[f.name] = f.type
            order.append(f.name)
        else:
            merged = merge(types[f.name], f.type)
            types[f.name] = merged if merged is not None else "str"
    return Schema(tuple(Field(n, types[n]) for n in order))


def infer(records) -> Schema:
    """The schema of dict records: every key seen, each column's types merged; a clash is an error."""
    types: dict[str, Any] = {}
    for rec in records:
        for name, value in rec.items():
            t = type_of(value)
            if name not in types:
                types[name] = t
                continue
            merged = merge(types[name], t)
            if merged is None:
                raise ConfigError(f"column {name!r} holds both {describe(types[name])} and {describe(t)} "
                                  f"values; give the output a schema")
            types[name] = merged
    return Schema(tuple(Field(str(n), "str" if t == "null" else t) for n, t in types.items()))


def describe(t) -> str:
    """A type as text (``list<int>``, ``struct``)."""
    if isinstance(t, tuple):
        return f"list<{describe(t[1])}>" if t[0] == "list" else "struct"
    return t


def check(value: Any, t) -> bool:
    """Whether ``value`` fits type ``t`` (null fits everything)."""
    if value is None:
        return True
    if isinstance(t, tuple):
        if t[0] == "list":
            return isinstance(value, (list, tuple)) and all(check(v, t[1]) for v in value)
        return isinstance(value, dict) and all(check(value.get(f.name), f.type) for f in t[1].fields)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63)
    if t == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t == "bool":
        return isinstance(value, bool)
    if t == "bytes":
        return isinstance(value, (bytes, bytearray))
    return t == "null"


def misfit(record: dict, schema: Schema) -> str | None:
    """Why ``record`` does not fit ``schema`` (an extra or wrongly typed field), or ``None``."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__} is not a record (a dict)"
    known = set(schema.names)
    extra = [k for k in record if k not in known]
    if extra:
        return f"field {extra[0]!r} is not in the schema {schema.names}"
    for f in schema.fields:
        v = record.get(f.name)
        if not check(v, f.type):
            return f"field {f.name!r} = {v!r:.60} is not {describe(f.type)}"
    return None


# ----------------------------------------------------------------------------- other tools' schemas
def to_arrow(schema: Schema):
    """The schema as a pyarrow schema (every field nullable)."""
    import pyarrow as pa
    return pa.schema([pa.field(f.name, _arrow_type(f.type), nullable=True) for f in schema.fields])


def _arrow_type(t):
    import pyarrow as pa
    if isinstance(t, tuple):
        if t[0] == "list":
            return pa.list_(_arrow_type(t[1]))
        return pa.struct([pa.field(f.name, _arrow_type(f.type)) for f in t[1].fields])
    return {"int": pa.int64(), "float": pa.float64(), "str": pa.string(), "bool": pa.bool_(),
            "bytes": pa.binary(), "null": pa.null()}[t]


def from_arrow(arrow_schema) -> Schema:
    """A pyarrow schema as ours."""
    return Schema(tuple(Field(f.name, _from_arrow_type(f.type)) for f in arrow_schema))


def _from_arrow_type(t):
    import pyarrow as pa
    import pyarrow.types as pt
    if pt.is_integer(t):
        return "int"
    if pt.is_floating(t) or pt.is_decimal(t):
        return "float"
    if pt.is_boolean(t):
        return "bool"
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return "bytes"
    if pt.is_list(t) or pt.is_large_list(t):
        return ("list", _from_arrow_type(t.value_type))
    if pt.is_struct(t):
        return ("struct", Schema(tuple(Field(t.field(i).name, _from_arrow_type(t.field(i).type))
                                       for i in range(t.num_fields))))
    if t == pa.null():
        return "null"
    return "str"


def to_avro(schema: Schema, name: str = "Record") -> dict:
    """The schema as an Avro record schema (every field a union with null)."""
    counter = [0]

    def avro_type(t):
        if isinstance(t, tuple):
            if t[0] == "list":
                return {"type": "array", "items": nullable(t[1])}
            counter[0] += 1
            return {"type": "record", "name": f"{name}{counter[0]}",
                    "fields": [{"name": f.name, "type": nullable(f.type), "default": None} for f in t[1].fields]}
        return {"int": "long", "float": "double", "str": "string", "bool": "boolean", "bytes": "bytes",
                "null": "null"}[t]

    def nullable(t):
        inner = avro_type(t)
        return "null" if inner == "null" else ["null", inner]

    return {"type": "record", "name": name,
            "fields": [{"name": f.name, "type": nullable(f.type), "default": None} for f in schema.fields]}


# ----------------------------------------------------------------------------- text values (CSV)
def parse_text(text: str, t):
    """A CSV field as type ``t``; an empty field is null for every type but ``str``. Raises ``ValueError``."""
    if t == "str":
        return text
    if text == "":
        return None
    if t == "int":
        return int(text)
    if t == "float":
        return float(text)
    if t == "bool":
        low = text.lower()
        if low in ("true", "1", "yes", "t"):
            return True
        if low in ("false", "0", "no", "f"):
            return False
        raise ValueError(f"{text!r} is not a bool")
    if t == "bytes":
        return text.encode("utf-8")
    raise ValueError(f"CSV columns cannot be {describe(t)}")


def infer_text(values) -> str:
    """The narrowest of int, float, bool, str that parses every non-empty value of a CSV column."""
    kinds, seen = ["int", "float", "bool"], False
    for v in values:
        if v == "":
            continue
        seen = True
        for k in list(kinds):
            try:
                parse_text(v, k)
            except ValueError:
                kinds.remove(k)
        if not kinds:
            return "str"
    return kinds[0] if kinds and seen else "str"
