"""python -m bench: the real bot against the fake Discord and fake providers, measured.

    python -m bench                       # the full run (minutes)
    python -m bench --quick --json f.json # tiny numbers, for CI
    python -m bench --only ack --commands 500

Nothing is asserted: the figures are printed beside their targets. The exit status is 1 only when
an interaction failed (no visible reply, a reply without the image, or a platform-rule violation).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.base import NO_ASSETS, Config, Outcome, Scenario
from bench.fakes import Assets, make_assets
from bench.scenarios import SCENARIOS
from bench.stats import add_floor_ratios, evaluate, machine, revision, rss_mib, table, write_json

EXIT_OK, EXIT_FAILED = 0, 1
NAMES = [s.name for s in SCENARIOS]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--commands",
        type=int,
        help="concurrent commands (ack, overhead-1k), members (members), jobs per member (backlog); "
        "default 200",
    )
    parser.add_argument("--jobs-4k", type=int, help="concurrent 4K jobs (4K scenarios, floor); default 50")
    parser.add_argument("--delay", type=float, help="the delayed provider's delay in seconds; default 2.0")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny numbers for CI (10 commands, 10 members, 3 × 10 backlog jobs, 2 4K jobs, 20 quota pairs, "
        "2 conversations)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    parser.add_argument(
        "--only", action="append", choices=NAMES, metavar="SCENARIO", help=f"run only these: {NAMES}"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every scenario in this process (the default gives each its own, so that one's "
        "memory and garbage never weigh on the next one's figures; --quick implies this)",
    )
    parser.add_argument("--child-json", type=Path, help=argparse.SUPPRESS)  # a scenario's own process
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    """Defaults, shrunk by --quick, overridden by explicit options."""
    base = Config()
    if args.quick:
        base = Config(
            commands=10,
            jobs_4k=2,
            delay=0.5,
            solo_1k=2,
            solo_4k=1,
            floor_repeats=1,
            timeout=120,
            db_pairs=20,
            db_concurrency=4,
            conversations=2,
            native_jobs=3,
        )
    chosen = {"commands": args.commands, "jobs_4k": args.jobs_4k, "delay": args.delay}
    return dataclasses.replace(base, **{k: v for k, v in chosen.items() if v is not None})


async def run(selected: list[Scenario], config: Config) -> dict[str, dict[str, Any]]:
    """Run the scenarios one after another, each on a fresh bot."""
    assets: Assets | None = None
    results: dict[str, dict[str, Any]] = {}
    for scenario in selected:
        if scenario.run is None:
            metrics: dict[str, Any] = dict.fromkeys(scenario.metrics)
            results[scenario.name] = {"title": scenario.title, "built": False, "metrics": metrics}
            results[scenario.name]["failures"] = []
            continue
        print(f"running {scenario.name}: {scenario.title} …", file=sys.stderr, flush=True)
        if scenario.needs_assets and assets is None:
            assets = await asyncio.to_thread(make_assets)
        started = time.perf_counter()
        try:
            outcome = await scenario.run(config, assets or NO_ASSETS)
        except Exception as e:  # a broken bot must show up as a failure, not hide the other figures
            logging.exception("scenario %s crashed", scenario.name)
            outcome = Outcome({}, [f"the scenario crashed: {type(e).__name__}: {e}"])
        print(f"  done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        results[scenario.name] = {
            "title": scenario.title,
            "built": True,
            "metrics": outcome.metrics,
            "failures": outcome.failures,
        }
    return results


def child_argv(args: argparse.Namespace, name: str, out: Path) -> list[str]:
    """The command line that runs one scenario in its own process, with the same options."""
    argv = [sys.executable, "-m", "bench", "--only", name, "--child-json", str(out)]
    for option in ("commands", "jobs_4k", "delay"):
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option.replace('_', '-')}", str(value)]
    return argv


def run_isolated(args: argparse.Namespace, selected: list[Scenario]) -> dict[str, dict[str, Any]]:
    """Each scenario in a fresh Python process (a real bot starts in one, after all)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="nanobot-bench-") as tmp:
        for scenario in selected:
            out = Path(tmp) / f"{scenario.name}.json"
            code = subprocess.run(child_argv(args, scenario.name, out), check=False).returncode
            if out.exists():
                results.update(json.loads(out.read_text()))
            else:
                failure = f"its process exited with status {code} and reported nothing"
                results[scenario.name] = {"title": scenario.title, "built": True, "metrics": {}}
                results[scenario.name]["failures"] = [failure]
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, write the JSON; 1 if any interaction failed."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = config_from(args)
    selected = [s for s in SCENARIOS if not args.only or s.name in args.only]
    if args.child_json is not None:  # one scenario, for a parent that prints the table
        args.child_json.write_text(json.dumps(asyncio.run(run(selected, config))))
        return EXIT_OK
    load_before = round(os.getloadavg()[0], 2)
    measured = revision()  # before the run: others may commit while it goes
    if args.quick or args.in_process or len(selected) == 1:
        results = asyncio.run(run(selected, config))
    else:
        results = run_isolated(args, selected)
    add_floor_ratios(results)
    peaks = [p for r in results.values() if isinstance(p := r["metrics"].get("peak_rss_mib"), float)]
    failures = [f"{name}: {f}" for name, r in results.items() for f in r["failures"]]
    report: dict[str, Any] = {
        "machine": {**machine(), "loadavg_before": load_before},
        "revision": measured,
        "config": {**dataclasses.asdict(config), "quick": args.quick},
        "scenarios": results,
        "targets": evaluate(results),
        "process_peak_rss_mib": max([rss_mib(peak=True), *peaks]),
        "failures": failures,
    }
    print(table(report))
    if args.json is not None:
        write_json(report, args.json)
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
