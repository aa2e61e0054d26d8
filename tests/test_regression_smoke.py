"""The CI smoke benchmark: configs/ci-smoke.yaml must reproduce baselines/ci-smoke.yaml, and a
deliberately degraded BM25 (b = 0) must fail the check with a readable diff."""
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import cli
from harness.regression.cli import check_command

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "ci-smoke.yaml"
BASELINE = ROOT / "baselines" / "ci-smoke.yaml"

pytestmark = pytest.mark.slow


def run(config: Path, out: Path) -> None:
    res = CliRunner().invoke(cli, ["run", str(config), "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output


def test_smoke_benchmark_reproduces_its_baseline(ci_smoke_results):
    res = CliRunner().invoke(check_command, [str(ci_smoke_results), "--baseline", str(BASELINE)])
    assert res.exit_code == 0, res.output + res.stderr
    assert "PASSED: 9 checks: 9 pass" in res.output


def test_degraded_bm25_fails_the_check(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    config["pipelines"] = [p for p in config["pipelines"] if p["name"] == "bm25"]
    config["pipelines"][0]["retriever"]["b"] = 0.0  # no document length normalisation
    degraded = tmp_path / "degraded.yaml"
    degraded.write_text(yaml.safe_dump(config))
    run(degraded, tmp_path / "out")
    res = CliRunner().invoke(check_command, [str(tmp_path / "out"), "--baseline", str(BASELINE),
                                             "--format", "json"])
    assert res.exit_code == 1
    report = json.loads(res.output)
    flagged = {(c["pipeline"], c["measure"]): c["outcome"] for c in report["checks"]}
    assert flagged[("bm25", "nDCG@10")] == "fail"
    assert flagged[("bm25s", "*")] == "missing"
    message = next(m for m in report["messages"] if m.startswith("FAIL bm25 nDCG@10:"))
    assert "expected 0.87525" in message and "tolerance ±5e-05 (deterministic)" in message
