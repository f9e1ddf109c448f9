"""`talon demo --quick` runs end to end, as a user would start it."""

import json
import subprocess
import sys

from tests.subprocesses import child_env


def test_demo_quick(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "talon", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, env=child_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    values = summary["values"]
    assert values["executor_spike_agreement"] == 1.0
    assert values["lint_issues"] == 0
    assert values["t1c_bytes"] == (tmp_path / "digits_snn.t1c").stat().st_size
    assert (tmp_path / "raster.png").stat().st_size > 10_000
    statuses = {step: status for step, _, status in summary["steps"]}
    assert "FAILED" not in statuses.values(), summary["steps"]
    assert "files written:" in result.stdout
