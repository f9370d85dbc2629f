"""``mapred cleanup``: run the NameNode's retention rules now, read or replace them, pin paths.

``mapred cleanup --dry-run`` lists exactly what ``mapred cleanup`` then does;
each line names the rule behind the action.
"""
from __future__ import annotations

import json

import click

from mapred.cli.common import clean_errors as _clean


def _client():
    from mapred.storage.client import Client
    nn = (click.get_current_context().find_object(dict) or {}).get("nn", "")
    if not nn:
        raise click.ClickException("no NameNode: pass --namenode tcp://host:port or set MAPRED_NAMENODE")
    return Client(nn)


@click.group("cleanup", invoke_without_command=True)
@click.option("--namenode", "nn", envvar="MAPRED_NAMENODE", default="",
              help="tcp://host:port of the NameNode (or MAPRED_NAMENODE)")
@click.option("--dry-run", is_flag=True, help="list what a run would do, do nothing")
@click.option("--json", "as_json", is_flag=True, help="the run's whole report as JSON")
@click.pass_context
@_clean
def cleanup(ctx, nn, dry_run, as_json):
    """Run the retention rules now (without a subcommand), or manage rules and pins."""
    ctx.obj = {"nn": nn}
    if ctx.invoked_subcommand is not None:
        return
    with _client() as c:
        report = c.cleanup_run(dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    verb = "would" if dry_run else "did"
    for a in report["actions"]:
        where = " (to trash)" if a.get("trash") else ""
        click.echo(f"[{a['rule']}] {verb} {a['action']} {a['path']}{where}: {a['reason']}")
    for h in report["honoured"]:
        click.echo(f"[{h['rule']}] kept {h['path']}: pinned by {h['pin']}")
    for f in report["failed"]:
        click.echo(f"[{f['rule']}] FAILED {f['path']}: {f['error']}")
    for k in report.get("skipped", []):
        click.echo(f"[{k['rule']}] skipped {k['path']}: {k['why']}")
    for note in report["notes"]:
        click.echo(f"note: {note}")
    if report["capped"]:
        click.echo(f"{report['capped']} more action(s) left for the next run (max_deletions_per_run)")
    click.echo(f"{len(report['actions'])} action(s), {report['freed_bytes']} bytes in "
               f"{report['freed_files']} file(s) {'would be ' if dry_run else ''}freed")


@cleanup.command("rules")
@click.argument("rules_file", required=False, type=click.Path(exists=True, dir_okay=False))
@_clean
def rules(rules_file):
    """Show the NameNode's rules; with RULES_FILE (TOML or JSON), replace them first."""
    from mapred.storage import cleanup as engine
    doc = None
    if rules_file:
        doc = engine.load_file(rules_file).describe()
    with _client() as c:
        click.echo(json.dumps(c.cleanup_rules(doc), indent=2, sort_keys=True))


@cleanup.command("status")
@_clean
def status():
    """Bytes and files freed by rule, the last run, pins honoured, the trash."""
    with _client() as c:
        click.echo(json.dumps(c.cleanup_status(), indent=2, sort_keys=True))


@cleanup.command("pin")
@click.argument("path")
@click.option("--tag", default="pinned", show_default=True, help="who pins it (one pin per tag)")
@click.option("--off", is_flag=True, help="remove this tag's pin instead")
@_clean
def pin(path, tag, off):
    """Keep every rule off PATH (and everything under and above it)."""
    with _client() as c:
        c.pin(path, tag, on=not off)
    click.echo(f"{'unpinned' if off else 'pinned'} {path} ({tag})")


@cleanup.command("pin-aliases")
@click.argument("registry_root")
@_clean
def pin_aliases(registry_root):
    """Pin every version a model alias points at in REGISTRY_ROOT (mrfs://...); unpin stale ones.

    The registry does this on every alias move; this is for registries written before.
    """
    from models import registry_pins
    from models.registry import Registry
    r = registry_pins.sync(Registry(registry_root))
    for path, tag in r["pinned"]:
        click.echo(f"pinned {path} ({tag})")
    for path, tag in r["unpinned"]:
        click.echo(f"unpinned {path} ({tag})")
    click.echo(f"{len(r['pinned'])} pinned, {len(r['unpinned'])} unpinned")


COMMANDS = (cleanup,)
