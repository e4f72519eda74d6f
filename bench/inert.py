"""Outside text at 1,000 models: ``inert()`` against passing the strings through.

Every label, annotation, note and tag the screens and commands show goes through
:func:`console.text.inert`. This builds the strings a 1,000-model dashboard with
an alert firing on every model shows (model, alert name, severity, summary,
description, generator URL and eight labels per alert: 16,000 strings), then
alternates, in one process:

* raw: ``str(s)`` on each string, what showing them untouched costs;
* clean: ``inert(s)`` on ordinary text (the common case: one regex search each);
* clean+markup: ``inert(s, markup=True)``, as a ``Static`` or a notification takes it;
* hostile, first sight: ``inert(s)`` when every string carries escape sequences
  (clear screen, OSC 0 title, OSC 52 clipboard, a bidi override), new each pass;
* hostile, seen before: the same hostile strings again, as every refresh after
  the first draws them.

It prints the medians per pass over all strings and their ratios to raw; only
the ratios are meant to travel.

    python bench/inert.py [--models 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence

from console.text import inert

HOSTILE = "\x1b[2J\x1b[H all good \x1b]0;pwned\x07\x1b]52;c;ZWNobyBvd25lZA==\x07 \u202e"


def strings(models: int, *, hostile: bool) -> list[str]:
    """What one alert per model puts on screen; ``hostile`` adds escapes to each."""
    out: list[str] = []
    for n in range(models):
        model = f"model-{n:04d}"
        out += [
            model,
            "ModelErrorBudgetBurn",
            "page",
            f"{model} is burning its error budget: 61.19% of requests fail (SLO 99%)",
            f"Requests to {model} fail [5xx] above 14.4x the budget rate over 1m and 10s.",
            f"http://127.0.0.1:19090/graph?g0.expr=mlc%3Aerror_ratio%7Bmodel%3D%22{model}%22%7D",
            "alertname",
            "ModelErrorBudgetBurn",
            "model",
            model,
            "severity",
            "page",
            "sli",
            "error_ratio",
            "team",
            "ml-platform",
        ]
    if hostile:
        out = [f"{s}{HOSTILE}" for s in out]
    return out


def one_pass(texts: Sequence[str], show: Callable[[str], str]) -> float:
    start = time.perf_counter()
    for text in texts:
        show(text)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)

    clean = strings(args.models, hostile=False)
    hostile = strings(args.models, hostile=True)
    fresh = [[f"{s}{run}" for s in hostile] for run in range(args.runs)]
    cases: dict[str, tuple[Callable[[int], Sequence[str]], Callable[[str], str]]] = {
        "raw": (lambda _: clean, str),
        "clean": (lambda _: clean, inert),
        "clean+markup": (lambda _: clean, lambda s: inert(s, markup=True)),
        "hostile, new": (lambda run: fresh[run], inert),
        "hostile, seen": (lambda _: hostile, inert),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for run in range(args.runs):  # alternate, so the machine's noise falls on every case
        for name, (texts, show) in cases.items():
            times[name].append(one_pass(texts(run), show))
    raw = statistics.median(times["raw"])
    print(f"{len(clean):,} strings ({args.models:,} models, one alert each), {args.runs} runs")
    for name, runs in times.items():
        median = statistics.median(runs)
        print(f"  {name:14} {median * 1000:8.2f} ms per pass  {median / raw:6.1f}x raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
