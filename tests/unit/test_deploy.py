"""deploy/: the Grafana dashboard and the Prometheus rules query only series a real bot exports.

Every metric name in their PromQL is looked up in the families of a running bot's /metrics, so renaming
a series without updating deploy/ fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.botenv import running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "nanobot-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
KEY = "deploy-gemini-key"
#: Series Prometheus makes itself for each scrape: never in a target's /metrics.
PROMETHEUS_OWN = frozenset({"up"})
#: PromQL words that are neither metrics nor followed by "(" (functions and aggregations always are).
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
ALERTS_EXPECTED = {
    "NanobotDown",
    "NanobotNotReady",
    "NanobotProviderPaused",
    "NanobotProviderErrorRatioHigh",
    "NanobotQueueGrowing",
    "NanobotOperatorBudgetNearlySpent",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords and variables left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings: label values, regular expressions
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match[0] in KEYWORDS:
            continue  # a function or an aggregation, or a keyword
        names.add(match[0])
    return names


def rules() -> list[dict[str, Any]]:
    """Every rule of the alerts file."""
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard as JSON."""
    return dict(json.loads(DASHBOARD.read_text(encoding="utf-8")))


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and the variables' label_values()."""
    exprs = [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else ""
        exprs.extend(re.findall(r"label_values\((\w+)", text))  # its metric (the label after it is not)
    return exprs


def balanced(expr: str) -> bool:
    """Whether the brackets of an expression pair up (strings aside)."""
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


# --- the extractor --------------------------------------------------------------------------------


def test_the_extractor_sees_metrics_not_functions_labels_or_keywords() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, provider) (rate(a_seconds_bucket{instance=~"$instance", '
        'x="f(y)"}[$__rate_interval]))) > 2 and on (instance) group_left (version) b_info '
        "or ignoring(shard) c_total offset 5m > bool 1e3 unless max without (shard) (d)"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_info", "c_total", "d"}


# --- the files ------------------------------------------------------------------------------------


def test_every_alert_is_complete() -> None:
    every = rules()
    assert {rule["alert"] for rule in every} == ALERTS_EXPECTED
    for rule in every:
        assert rule["expr"] and balanced(rule["expr"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    # The rules select the scrape job that the example configuration defines.
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {m for rule in every for m in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert jobs == {job["job_name"] for job in config["scrape_configs"]}
    assert config["rule_files"] == ["alerts.yml"]


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    board = dashboard()
    every = panels(board)
    assert len({p["id"] for p in every}) == len(every)
    graphs = [p for p in every if p["type"] != "row"]
    for panel in graphs:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(balanced(t["expr"]) for t in panel["targets"]), panel["title"]
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
    queried = {name for expr in dashboard_queries(board) for name in metric_names(expr)}
    for name in (
        "nanobot_jobs_total",
        "nanobot_job_duration_seconds_bucket",
        "nanobot_provider_request_duration_seconds_bucket",
        "nanobot_provider_errors_total",
        "nanobot_queue_depth",
        "nanobot_jobs_running",
        "nanobot_provider_circuit_state",
        "nanobot_credits_spent_total",
        "nanobot_operator_spent_credits",
        "nanobot_operator_budget_credits",
        "nanobot_gateway_latency_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert name in queried, name


# --- against the real bot -------------------------------------------------------------------------


async def exported_families(tmp_path: Path) -> tuple[dict[str, str], set[str]]:
    """Family name → type, and the families with samples, from the /metrics of a real bot (with an
    operator budget, so that the budget series are there)."""
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        entry = {"name": "google", "kind": "gemini", "base_url": provider.base_url, "api_key": KEY}
        async with running_bot(
            fake, tmp_path, entry, health_port=0, health_host="127.0.0.1", operator_daily_budget=50
        ) as bot:
            assert bot.health is not None
            url = f"http://127.0.0.1:{bot.health.port}/metrics"
            async with aiohttp.ClientSession() as session, session.get(url) as answer:
                assert answer.status == 200
                text = await answer.text()
    families = list(text_string_to_metric_families(text))
    return {f.name: f.type for f in families}, {f.name for f in families if f.samples}


def exported(name: str, families: dict[str, str]) -> bool:
    """Whether a queried name is a series of these families (histograms by their suffixed series)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) == "histogram":
            return True
    if name.endswith("_total") and families.get(name.removesuffix("_total")) == "counter":
        return True
    return families.get(name) in {"gauge", "untyped"}


async def test_every_metric_the_deploy_files_query_is_exported_by_the_bot(tmp_path: Path) -> None:
    exprs = [rule["expr"] for rule in rules()]
    exprs += dashboard_queries(dashboard())
    queried = {name for expr in exprs for name in metric_names(expr)}
    assert len(queried) >= 15, queried
    families, sampled = await exported_families(tmp_path)
    missing = sorted(name for name in queried - PROMETHEUS_OWN if not exported(name, families))
    assert missing == []
    # The series the budget alert divides are there with values, not only declared.
    assert {"nanobot_operator_budget_credits", "nanobot_operator_spent_credits", "nanobot_ready"} <= sampled
