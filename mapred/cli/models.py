"""``mapred models ...`` (the model registry) and ``mapred predict`` (batch prediction as a job).

The registry is named by ``--registry`` (or ``$MAPRED_REGISTRY``): a local
directory or ``mrfs://host:port/path``; without one, ``mrfs://$MAPRED_NAMENODE/models``
when a NameNode is named, else ``~/.mapred/models``.
"""
from __future__ import annotations

import datetime
import json

import click

from mapred.cli.common import clean_errors

_registry_option = click.option("--registry", default="", envvar="MAPRED_REGISTRY",
                                help="registry root: a directory or mrfs://H:P/path")


def _reg(root: str):
    from models.registry import Registry
    return Registry(root or None)


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _split_ref(ref: str) -> tuple[str, int | None]:
    name, _, version = ref.partition("/")
    if version and not version.isdigit():
        raise click.BadParameter(f"{ref!r}: expected NAME or NAME/VERSION (a number)")
    return name, int(version) if version else None


@click.group("models")
def models_group() -> None:
    """The model registry: versions, aliases, metrics and lineage."""


@models_group.command("list")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@clean_errors
def list_models(registry, as_json):
    """Every model: versions, latest, aliases."""
    reg = _reg(registry)
    rows = []
    for name in reg.names():
        nums = reg.version_numbers(name)
        aliases = {a: st.version for a, st in reg.aliases(name).items()}
        rows.append({"name": name, "versions": len(nums), "latest": nums[-1] if nums else None,
                     "aliases": aliases})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo(f"no models in {reg.root}")
    for r in rows:
        aliases = " ".join(f"{a}->{v}" for a, v in sorted(r["aliases"].items())) or "-"
        click.echo(f"{r['name']:<24} versions {r['versions']:<4} latest {r['latest']!s:<5} aliases {aliases}")


@models_group.command("show")
@click.argument("ref")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@clean_errors
def show(ref, registry, as_json):
    """A model's versions (NAME) or one version in full (NAME/V)."""
    reg = _reg(registry)
    name, version = _split_ref(ref)
    if version is None:
        versions = reg.versions(name)
        if as_json:
            click.echo(json.dumps([v.to_dict() for v in versions], indent=1, default=str))
            return
        for v in versions:
            test = (v.metrics.get("test") or {})
            score = next((f"{k} {test[k]:.4g}" for k in ("accuracy", "r2", "rmse") if k in test), "")
            aliases = ",".join(v.aliases) or "-"
            click.echo(f"{name}/{v.version:<4} {v.model_class:<20} {_when(v.registered_at)} "
                       f"by {v.registered_by:<10} aliases {aliases:<16} {score}")
        return
    v = reg.get(name, version)
    if as_json:
        click.echo(json.dumps(v.to_dict(), indent=1, default=str))
        return
    click.echo(f"{name}/{v.version}: {v.model_class}  registered {_when(v.registered_at)} by {v.registered_by}")
    click.echo(f"  aliases: {', '.join(v.aliases) or '-'}")
    click.echo(f"  params: {json.dumps(v.params, default=str)}")
    lin = v.lineage
    click.echo(f"  lineage: seed {lin.get('seed')}, mapred {lin.get('mapred_version')}, "
               f"code sha256 {str(lin.get('code_sha256'))[:16]}")
    for inp in lin.get("inputs", []):
        click.echo(f"    input {inp['path']}  {inp['bytes']} bytes  sha256 {inp['sha256'][:16]}")
    for key, val in v.metrics.items():
        if key != "history":
            click.echo(f"  metrics[{key}]: {json.dumps(val, default=str)}")
    if v.metrics.get("history"):
        click.echo(f"  history: {len(v.metrics['history'])} passes, last {v.metrics['history'][-1]}")
    for ev in v.evaluations:
        click.echo(f"  evaluation on {ev['dataset']} {_when(ev['at'])}: {json.dumps(ev['metrics'], default=str)}")


@models_group.command("register")
@click.argument("name")
@click.argument("saved_path")
@_registry_option
@click.option("--input", "inputs", multiple=True, help="a training input to record (path; repeatable)")
@click.option("--seed", type=int, default=None, help="random seed recorded with the model")
@click.option("--description", default="", help="a line describing the model")
@click.option("--metrics", "metrics_json", default="", help='JSON, e.g. {"test": {"accuracy": 0.95}}')
@clean_errors
def register(name, saved_path, registry, inputs, seed, description, metrics_json):
    """Register the model saved at SAVED_PATH as the next version of NAME (aliases stay put)."""
    try:
        metrics = json.loads(metrics_json) if metrics_json else None
    except ValueError as exc:
        raise click.BadParameter(f"--metrics is not JSON: {exc}") from None
    v = _reg(registry).register(saved_path, name, inputs=list(inputs), seed=seed, description=description,
                                metrics=metrics)
    click.echo(f"registered {name}/{v.version} ({v.model_class})")


@models_group.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False, type=int)
@_registry_option
@click.option("--rollback", is_flag=True, help="point ALIAS back at its previous version")
@click.option("--delete", is_flag=True, help="remove ALIAS")
@clean_errors
def alias(name, alias, version, registry, rollback, delete):
    """Point ALIAS of NAME at VERSION (atomic; the old target is kept as `previous`)."""
    reg = _reg(registry)
    if rollback:
        st = reg.rollback(name, alias)
    elif delete:
        st = reg.set_alias(name, alias, None)
        click.echo(f"{name}@{alias} removed (was {st.previous})")
        return
    elif version is None:
        raise click.UsageError("give VERSION, --rollback or --delete")
    else:
        st = reg.set_alias(name, alias, version)
    click.echo(f"{name}@{alias} -> {st.version} (previous {st.previous})")


@models_group.command("rm")
@click.argument("ref")
@_registry_option
@clean_errors
def rm(ref, registry):
    """Remove version NAME/V (refused while an alias points at it)."""
    name, version = _split_ref(ref)
    if version is None:
        raise click.BadParameter(f"{ref!r}: name the version to remove, NAME/V")
    _reg(registry).remove(name, version)
    click.echo(f"removed {name}/{version}")


@models_group.command("serving")
@click.argument("name")
@_registry_option
@click.option("--max-batch-size", type=click.IntRange(0), default=None, help="rows per batch; 0/1 = off")
@click.option("--max-batch-wait-ms", type=click.FloatRange(0), default=None, help="the most milliseconds a request waits to be batched")
@click.option("--max-queue", type=click.IntRange(0), default=None, help="waiting requests before 503")
@clean_errors
def serving(name, registry, max_batch_size, max_batch_wait_ms, max_queue):
    """Show or set NAME's serving options (micro-batching; taken up when a version loads)."""
    opts = {k: v for k, v in {"max_batch_size": max_batch_size, "max_batch_wait_ms": max_batch_wait_ms,
                              "max_queue": max_queue}.items() if v is not None}
    reg = _reg(registry)
    current = reg.set_serving_options(name, **opts) if opts else reg.serving_options(name)
    click.echo(json.dumps(current))


def _fields(text: str) -> list | None:
    return [c.strip() for c in text.split(",") if c.strip()] or None


@click.command("predict")
@click.argument("ref")
@click.argument("input_path")
@click.option("-o", "--output", required=True, help="output path (local or mrfs://)")
@_registry_option
@click.option("--master", "master_addr", default="", envvar="MAPRED_MASTER",
              help="tcp://H:P of a cluster's master (default: an embedded local cluster)")
@click.option("--workers", type=int, default=None, help="local workers (without --master)")
@click.option("--overwrite", is_flag=True, help="replace the output if it exists")
@click.option("--input-format", default=None,
              help="text, records, csv, jsonl, parquet, avro or seq (default: by extension)")
@click.option("--format", "output_format", default=None,
              help="output format for record input: msgpack, csv, jsonl, parquet, avro, seq (default: the input's)")
@click.option("--columns", default="", help="comma-separated fields a record's features come from, in order")
@click.option("--keep", default="", help="comma-separated input fields copied to each output record (an id)")
@clean_errors
def predict(ref, input_path, output, registry, master_addr, workers, overwrite, input_format, output_format,
            columns, keep):
    """Batch prediction as a map-only job: REF (models:/NAME@ALIAS, models:/NAME/V or a saved model
    path) over INPUT (an array dataset, text lines, or records: msgpack, CSV, JSON lines, Parquet,
    Avro), output rows aligned with the input."""
    from models.serving.batch import batch_predict
    options = {"input_format": input_format, "output_format": output_format, "columns": _fields(columns),
               "keep": _fields(keep)}
    cluster = None
    if master_addr:
        import mapred
        cluster = mapred.connect(master_addr)
    try:
        result = batch_predict(ref, input_path, output, registry=registry or None, cluster=cluster,
                               workers=workers, overwrite=overwrite, **options)
    finally:
        if cluster is not None:
            cluster.close()
    fmt = result["format"] + (f" -> {result['output_format']}" if "output_format" in result else "")
    click.echo(f"predicted with {result['model']} version {result['version']}: {result['output']} ({fmt})")


COMMANDS = [models_group, predict]
