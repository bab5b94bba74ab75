"""Shared timing helper of the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeats`` times: ``(median wall time s, all times s, the last result)``."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def wall_and_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """Run ``fn`` once: ``(wall seconds, process CPU seconds)``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def round_robin(
    contenders: dict[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: bool = False,
    rotate: bool = True,
    measure: Callable[[str, Callable[[], Any]], tuple[float, float]] | None = None,
    on_round: Callable[[int, dict[str, list[float]], dict[str, list[float]]], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time every contender once per round for ``repeats`` rounds: ``(wall s, process CPU s)``,
    each a list per contender in round order.

    ``warmup``: one untimed round first. ``rotate``: the order rotates from round to round (on a
    shared machine whose load drifts, no contender always runs first); otherwise every round runs
    them in the order given. ``measure(key, fn)`` times one call (default :func:`wall_and_cpu`;
    a contender that times itself elsewhere returns its own figures). ``on_round(round, wall, cpu)``
    is called after each timed round (progress output)."""
    measure = measure or (lambda key, fn: wall_and_cpu(fn))
    keys = list(contenders)
    if warmup:
        for key in keys:
            contenders[key]()
    wall: dict[str, list[float]] = {k: [] for k in keys}
    cpu: dict[str, list[float]] = {k: [] for k in keys}
    for rnd in range(repeats):
        order = keys[rnd % len(keys):] + keys[: rnd % len(keys)] if rotate and keys else keys
        for key in order:
            w, c = measure(key, contenders[key])
            wall[key].append(w)
            cpu[key].append(c)
        if on_round is not None:
            on_round(rnd, wall, cpu)
    return wall, cpu
