"""CPU seconds of other processes, read from ``/proc/<pid>/stat`` (Linux; 0 elsewhere): the
store's share of the machine's cores while omsflow runs beside it."""

from __future__ import annotations

import os
from pathlib import Path


def _ticks(stat: Path) -> tuple[int, int] | None:
    """(process group, utime + stime in clock ticks) of one ``stat`` file; None: gone."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[2]), int(fields[11]) + int(fields[12])  # pgrp; utime, stime


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    got = _ticks(Path(f"/proc/{pid}/stat"))
    return 0.0 if got is None else got[1] / os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """CPU seconds every live process of group ``pgid`` has used so far."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        got = _ticks(stat)
        if got is not None and got[0] == pgid:
            ticks += got[1]
    return ticks / os.sysconf("SC_CLK_TCK")
