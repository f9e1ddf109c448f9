"""`talon demo --quick` runs end to end."""

import subprocess
import sys


def test_demo_quick(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "talon", "demo", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "round trip is bit-exact" in result.stdout
    assert (tmp_path / "seed_snn.t1c").exists()
