"""The benchmark still runs end to end (tiny numbers) and still reports every figure."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bench.load import inversions, queue_limit
from bench.stats import Target

ROOT = Path(__file__).resolve().parents[2]
COMMON = ("loop_lag_p99_ms", "loop_lag_max_ms", "jobs_per_s", "peak_rss_mib")
OVERHEAD = tuple(
    f"{phase}{figure}"
    for phase in ("solo_", "")
    for figure in ("overhead_p50_ms", "overhead_p99_ms", "e2e_p50_ms", "provider_p50_ms")
)
MEASURED = {
    "ack": ("commands", "ack_p50_ms", "ack_p99_ms", "ack_max_ms", "rss_start_mib", *COMMON, *OVERHEAD[4:]),
    "overhead-1k": ("jobs", "rss_start_mib", *COMMON, *OVERHEAD),
    "overhead-4k-png": (
        "jobs",
        "rss_start_mib",
        "provider_output_mib",
        "solo_floor_ms",
        "solo_overhead_floor_ratio",
        "overhead_floor_ratio",
        *COMMON,
        *OVERHEAD,
    ),
    "overhead-4k-jpeg": (
        "jobs",
        "rss_start_mib",
        "provider_output_mib",
        "solo_floor_ms",
        "solo_overhead_floor_ratio",
        "overhead_floor_ratio",
        *COMMON,
        *OVERHEAD,
    ),
    "floor": ("jobs", "single_ms", "single_min_ms", "burst_p50_ms", "burst_p99_ms", "input_mib", *COMMON),
    "members": (
        "members",
        "delivered",
        "refused",
        "failed",
        "undelivered",
        "e2e_p50_ms",
        "e2e_p99_ms",
        "ack_p99_ms",
        "ideal_jobs_per_s",
        "ideal_ratio",
        "rss_start_mib",
        *COMMON,
    ),
    "references-14": ("jobs", "failed", "references_mib", "e2e_p50_ms", "e2e_p99_ms", *COMMON),
    "streamed": ("jobs", "failed", "previews_shown", "e2e_p50_ms", "e2e_p99_ms", *COMMON),
    "backlog": (
        "members",
        "jobs_per_member",
        "queue_limit",
        "jobs_at_once",
        "accepted",
        "delivered",
        "refused",
        "failed",
        "order_inversions",
        "members_out_of_order",
        "e2e_p50_ms",
        "e2e_p99_ms",
        "ack_p99_ms",
        "ideal_jobs_per_s",
        "ideal_ratio",
        "rss_start_mib",
        *COMMON,
    ),
    # SQLite always; the pg_ twins are figures only when a PostgreSQL server answers.
    "db-quota": (
        "pairs",
        "concurrency",
        "pairs_per_s",
        "pair_p50_ms",
        "pair_p99_ms",
        "concurrent_pairs_per_s",
        "concurrent_pair_p99_ms",
    ),
    "db-conversation": (
        "conversations",
        "concurrency",
        *(
            f"{c}{k}"
            for c in ("", "concurrent_")
            for k in ("conversations_per_s", "ops_per_s", "history_p50_ms")
        ),
    ),
}


def is_number(value: object) -> bool:
    """A real figure: int or float, not a bool or None."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.timeout(90)
async def test_quick_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--json",
        str(out),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 80)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    report = json.loads(out.read_text())
    assert report["failures"] == [], text
    assert set(report["scenarios"]) == set(MEASURED)
    for name, keys in MEASURED.items():
        assert report["scenarios"][name]["built"] is True, name
        metrics = report["scenarios"][name]["metrics"]
        missing = [k for k in keys if not is_number(metrics.get(k))]
        assert not missing, f"{name}: no figure for {missing}"
        assert metrics.get("ops_per_s", 1) > 0 and metrics.get("pairs_per_s", 1) > 0
    assert report["machine"]["nproc"] >= 1
    assert is_number(report["process_peak_rss_mib"])
    assert {t["metric"] for t in report["targets"]} >= {"ack_p99_ms", "loop_lag_p99_ms", "peak_rss_mib"}
    judged = {(t["scenario"], t["metric"]): t["met"] for t in report["targets"]}
    for key in (("members", "undelivered"), ("members", "e2e_p99_ms"), ("backlog", "ideal_ratio")):
        assert judged.get(key) is not None, f"target {key} not judged"
    # Every command of the load scenarios accounted for: an image or a refusal, none lost.
    for name, sent in (("members", 10), ("backlog", 30)):
        metrics = report["scenarios"][name]["metrics"]
        assert metrics["failed"] == 0 and metrics["delivered"] > 0, name
        assert metrics["delivered"] + metrics["refused"] == sent, name
    for name in ("references-14", "streamed"):  # every job delivered (with its 14 references)
        assert report["scenarios"][name]["metrics"]["failed"] == 0, name
    assert report["scenarios"]["streamed"]["metrics"]["previews_shown"] > 0
    assert "not built yet" not in text
    assert "reserve+commit pairs, one at a time" in text


def test_inversions_count_every_pair_out_of_order() -> None:
    assert inversions([1.0, 2.0, 3.0]) == 0
    assert inversions([1.0, 3.0, 2.0]) == 1
    assert inversions([3.0, 2.0, 1.0]) == 3


def test_a_floor_target_is_met_at_or_above_its_limit() -> None:
    floor = Target("backlog", "ideal_ratio", 0.8, "at least 80%", inclusive=True, floor=True)
    assert (floor.met(0.79), floor.met(0.8), floor.met(1.2), floor.met(None)) == (False, True, True, None)
    assert floor.bound() == "≥ 0.8"
    assert Target("ack", "ack_p99_ms", 100, "under 100").met(120) is False


def test_the_backlog_queue_setting_stays_within_what_the_settings_accept() -> None:
    assert queue_limit(5) == 5
    assert queue_limit(10**9) < 10**9
