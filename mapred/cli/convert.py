"""``mapred convert`` and ``mapred split``: data format conversion and data set splits, as jobs."""
from __future__ import annotations

import json

import click

from mapred.cli.common import clean_errors

INPUT_FORMATS = ["text", "records", "csv", "jsonl", "parquet", "avro", "seq"]
TARGETS = ["csv", "jsonl", "parquet", "avro", "seq", "text", "msgpack"]


def _options(pairs) -> dict:
    """``--option key=value`` pairs (JSON values where they parse: ``header=false``, ``columns=["a"]``)."""
    out = {}
    for pair in pairs or ():
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--input-option")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _cluster(master):
    if not master:
        return None
    import mapred
    return mapred.connect(master)


def _common(fn):
    for option in reversed([
        click.option("-o", "--output", required=True, help="Output directory (local path or mrfs:// URI)."),
        click.option("--schema", default=None, help="Output schema: NAME:TYPE,... or an Avro schema (JSON or file)."),
        click.option("--compression", default=None, help="Codec of the target format (e.g. zstd, gzip, lz4)."),
        click.option("--input-format", type=click.Choice(INPUT_FORMATS), default=None,
                     help="Input format (default: each file's, by its extension)."),
        click.option("--input-option", "input_options", multiple=True, metavar="KEY=VALUE",
                     help="A reader option, e.g. delimiter=';' or header=false (repeatable)."),
        click.option("--errors", type=click.Choice(["strict", "skip"]), default="strict",
                     help="Bad records: fail naming them (strict) or count and keep them under OUTPUT/_bad_records/."),
        click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists."),
        click.option("-w", "--workers", type=click.IntRange(min=1), default=None,
                     help="Executor processes of the embedded cluster."),
        click.option("--master", default=None, metavar="tcp://HOST:PORT", help="Run on a cluster instead of locally."),
    ]):
        fn = option(fn)
    return fn


def _summary(result) -> None:
    counters = result.counters
    written = counters.get("formats", {}).get("records_written", 0)
    bad = counters.get("formats", {}).get("bad_records", 0)
    notes = {k: v for k, v in counters.get("formats", {}).items() if k not in ("bad_records", "records_written")}
    click.echo(f"wrote {written} records to {result.path} ({result.elapsed:.2f}s)"
               + (f"; {bad} bad records under {result.path}/_bad_records/" if bad else "")
               + (f"; {json.dumps(notes)}" if notes else ""), err=True)


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--to", "to", type=click.Choice(TARGETS), required=True, help="The target format.")
@_common
@clean_errors
def convert(inputs, to, output, schema, compression, input_format, input_options, errors, overwrite, workers,
            master):
    """Rewrite INPUT... (any format mapred reads) as --to FORMAT under OUTPUT, as a map-only job."""
    from mapred.runtime.convert import convert as run_convert
    result = run_convert(list(inputs), output, to, schema=schema, compression=compression,
                         input_format=input_format, input_options=_options(input_options),
                         bad_records="skip" if errors == "skip" else "fail", overwrite=overwrite,
                         workers=workers, cluster=_cluster(master))
    _summary(result)


@click.command("split")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-n", "--parts", type=click.IntRange(min=1), default=None, help="Equal parts.")
@click.option("--weights", default=None, help="Parts by weight, e.g. 0.8,0.1,0.1.")
@click.option("--names", default=None, help="Part names, e.g. train,validation,test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the hash that assigns records to parts.")
@click.option("--to", "to", type=click.Choice(TARGETS), default="parquet", show_default=True,
              help="The format the parts are written in.")
@_common
@clean_errors
def split(inputs, parts, weights, names, seed, to, output, schema, compression, input_format, input_options,
          errors, overwrite, workers, master):
    """Split INPUT... into parts by a seeded hash of each record's location; OUTPUT/_index.json counts them."""
    from mapred.runtime.convert import split as run_split
    if not parts and not weights:
        raise click.UsageError("give --parts N or --weights W,W,...")
    index = run_split(list(inputs), output, parts, weights=weights.split(",") if weights else None,
                      names=names.split(",") if names else None, seed=seed, to=to, schema=schema,
                      compression=compression, input_format=input_format,
                      input_options=_options(input_options), bad_records="skip" if errors == "skip" else "fail",
                      overwrite=overwrite, workers=workers, cluster=_cluster(master))
    click.echo(json.dumps(index, indent=2))


COMMANDS = (convert, split)
