"""Open Inference Protocol v2 tensors: JSON (and the binary tensor extension) to numpy and back.

A request is ``{"id", "parameters", "inputs": [{"name", "shape", "datatype",
"data" | parameters.binary_data_size}], "outputs": [{"name", "parameters"}]}``.
With the binary extension (what Triton's and KServe's clients send by
default) the body is the JSON header, whose length is the
``Inference-Header-Content-Length`` HTTP header, followed by each binary input's
raw little-endian bytes in input order (BYTES elements as a 4-byte length and
the bytes).  Every decode error is an ``InferError(400)`` naming the tensor and
what was expected.
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

import numpy as np

from .errors import InferError

DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}
MAX_ELEMENTS = 1 << 26


@dataclass
class Tensor:
    """A decoded input tensor."""

    name: str
    datatype: str
    shape: list
    array: np.ndarray
    parameters: dict = field(default_factory=dict)


@dataclass
class InferRequest:
    id: str | None
    inputs: list
    outputs: list          # [{"name", "parameters"}] or []
    parameters: dict


def datatype_of(arr: np.ndarray) -> str:
    """The OIP datatype name of a numpy array (strings and objects are BYTES)."""
    kind = arr.dtype
    if kind.kind in "OUS":
        return "BYTES"
    for name, np_type in DTYPES.items():
        if np_type is not np.object_ and kind == np.dtype(np_type):
            return name
    raise InferError(500, f"no protocol datatype for numpy dtype {kind}")


def _fail(msg: str) -> InferError:
    return InferError(400, msg)


def parse_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """Decode an infer request body (JSON, or JSON + binary tensors)."""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise _fail(f"Inference-Header-Content-Length {header_length!r} is not a number") from None
        if not 0 < n <= len(body):
            raise _fail(f"Inference-Header-Content-Length {n} is outside the body's {len(body)} bytes")
        head, rest = body[:n], memoryview(body)[n:]
    else:
        head, rest = body, memoryview(b"")
    try:
        doc = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _fail("the request body must be a JSON object with an 'inputs' list")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _fail("the request needs a non-empty 'inputs' list")
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail("'parameters' must be an object")
    offset, tensors = 0, []
    for i, spec in enumerate(inputs):
        tensor, used = _tensor(spec, i, rest[offset:])
        offset += used
        tensors.append(tensor)
    if offset != len(rest):
        raise _fail(f"{len(rest) - offset} bytes of binary data follow the inputs and belong to none")
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise _fail("'outputs' must be a list of objects with a 'name'")
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise _fail("'id' must be a string")
    return InferRequest(rid, tensors, outputs, params)


def _tensor(spec, i: int, binary: memoryview) -> tuple[Tensor, int]:
    if not isinstance(spec, dict):
        raise _fail(f"inputs[{i}] must be an object with name, shape, datatype and data")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"inputs[{i}] needs a 'name' string")
    dtype, shape = spec.get("datatype"), spec.get("shape")
    if dtype not in DTYPES:
        raise _fail(f"input {name!r} has datatype {dtype!r}; known datatypes are {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise _fail(f"input {name!r} needs 'shape', a list of non-negative integers, got {shape!r}")
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise _fail(f"input {name!r} has {count} elements; the limit is {MAX_ELEMENTS}")
    params = spec.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail(f"input {name!r} 'parameters' must be an object")
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        if not isinstance(size, int) or size < 0 or size > len(binary):
            raise _fail(f"input {name!r} binary_data_size {size!r} exceeds the {len(binary)} bytes left")
        arr = _from_binary(name, dtype, count, bytes(binary[:size]))
        used = size
    else:
        if "data" not in spec:
            raise _fail(f"input {name!r} has no 'data' (nor parameters.binary_data_size)")
        arr, used = _from_json(name, dtype, count, spec["data"]), 0
    if arr.size != count:
        raise _fail(f"input {name!r} has {arr.size} values for shape {shape} ({count} expected)")
    return Tensor(name, dtype, shape, arr.reshape(shape), params), used


def _from_json(name: str, dtype: str, count: int, data) -> np.ndarray:
    if not isinstance(data, list):
        raise _fail(f"input {name!r} 'data' must be a list")
    if dtype == "BYTES":
        flat = _flatten(name, data)
        if not all(isinstance(v, str) for v in flat):
            raise _fail(f"input {name!r} of datatype BYTES takes strings in 'data'")
        return np.array(flat, dtype=object)
    flat = _flatten(name, data)
    ok = (lambda v: isinstance(v, bool)) if dtype == "BOOL" else \
        (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if not all(ok(v) for v in flat):
        bad = next(v for v in flat if not ok(v))
        raise _fail(f"input {name!r} of datatype {dtype} holds {type(bad).__name__} value {bad!r}")
    try:
        return np.array(flat, dtype=DTYPES[dtype])
    except (OverflowError, ValueError) as exc:
        raise _fail(f"input {name!r}: a value does not fit {dtype}: {exc}") from None


def _flatten(name: str, data: list) -> list:
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _from_binary(name: str, dtype: str, count: int, raw: bytes) -> np.ndarray:
    if dtype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise _fail(f"input {name!r} BYTES data ends inside an element's length")
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > len(raw):
                raise _fail(f"input {name!r} BYTES element of {n} bytes runs past the data")
            try:
                items.append(raw[pos:pos + n].decode("utf-8"))
            except UnicodeDecodeError:
                raise _fail(f"input {name!r} BYTES element {len(items)} is not UTF-8 text") from None
            pos += n
        return np.array(items, dtype=object)
    width = np.dtype(DTYPES[dtype]).itemsize
    if len(raw) != count * width:
        raise _fail(f"input {name!r} has {len(raw)} binary bytes; {count} {dtype} values need {count * width}")
    return np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<")).copy()


# -- responses


def encode_response(model_name: str, version: str, rid: str | None, outputs: dict,
                    requested: list, binary_default: bool) -> tuple[bytes, int | None]:
    """(body, header length or None): JSON, or JSON + raw bytes where binary outputs were asked for."""
    wanted = {o["name"]: (o.get("parameters") or {}) for o in requested}
    names = list(wanted) if wanted else list(outputs)
    out_docs, blobs = [], []
    for name in names:
        arr = np.asarray(outputs[name])
        doc = {"name": name, "datatype": datatype_of(arr), "shape": list(arr.shape)}
        binary = wanted.get(name, {}).get("binary_data", binary_default)
        if binary:
            raw = _to_binary(arr)
            doc["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            doc["data"] = _to_json(arr)
        out_docs.append(doc)
    body = {"model_name": model_name, "model_version": version, "outputs": out_docs}
    if rid is not None:
        body["id"] = rid
    head = json.dumps(body, separators=(",", ":")).encode()
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _to_json(arr: np.ndarray) -> list:
    flat = arr.reshape(-1)
    if flat.dtype.kind in "OUS":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    if flat.dtype.kind == "f" and not np.isfinite(flat).all():
        return [v if math.isfinite(v) else None for v in flat.tolist()]
    return flat.tolist()


def _to_binary(arr: np.ndarray) -> bytes:
    if arr.dtype.kind in "OUS":
        parts = []
        for v in arr.reshape(-1).tolist():
            b = v if isinstance(v, bytes) else str(v).encode()
            parts.append(struct.pack("<I", len(b)) + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
