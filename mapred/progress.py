"""The live progress line ``mapred run`` prints on stderr, and the closing counters summary."""
from __future__ import annotations

import sys
import time


class ProgressLine:
    """Rewrites one stderr line at most every ``interval`` seconds."""

    def __init__(self, stream=None, interval: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self.last = 0.0
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.printed = False
        self.pending = None      # the latest state not yet shown (rate-limited)

    def __call__(self, progress: dict, counters: dict) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            self.pending = (progress, counters)
            return
        self.pending = None
        self.last = now
        self._show(progress, counters, now)

    def _show(self, progress: dict, counters: dict, now: float) -> None:
        elapsed = now - self.started
        records = counters.get("map", {}).get("input_records", 0)
        line = (f"map {progress['maps_done']}/{progress['maps']}  reduce {progress['reduces_done']}/"
                f"{progress['reduces']}  {records / max(elapsed, 1e-9):,.0f} rec/s  {elapsed:.1f}s  "
                f"[{progress['state'].lower()}]")
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.printed = True

    def close(self) -> None:
        """Show the final state (it may have been rate-limited), then end the line."""
        if self.pending is not None:
            self._show(*self.pending, time.monotonic())
            self.pending = None
        if self.printed and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def format_counters(counters: dict) -> str:
    """The counters as an indented block, groups and names sorted."""
    lines = ["counters:"]
    for group in sorted(counters):
        lines.append(f"  {group}")
        for name, value in sorted(counters[group].items()):
            lines.append(f"    {name:<28} {value:>14,}")
    return "\n".join(lines)
