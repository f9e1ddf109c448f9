"""CI runs the byte-flip fuzz (tests/fuzz_t1c.py) at a small count; ``make fuzz`` runs 2,000 files."""

from __future__ import annotations

from .. import fuzz_t1c


def test_every_flipped_byte_is_detected_and_nothing_crashes_or_hangs(tmp_path):
    summary = fuzz_t1c.run(80, seed=18, keep=tmp_path)
    assert summary["verdicts"] == {"detected": 80, "undetected": 0, "raw": 0, "crash": 0, "hang": 0}, summary
    assert summary["by_region"]["array data"]["detected"] >= 20  # a third of the flips aim at array data


def test_resealed_flips_never_crash_the_reader_or_escape_as_raw_errors(tmp_path):
    summary = fuzz_t1c.run(80, seed=18, keep=tmp_path, reseal=True)
    assert summary["verdicts"]["raw"] == summary["verdicts"]["crash"] == 0, summary


def test_structure_aware_campaigns_find_nothing_at_a_small_count():
    """tests/fuzz_readers.py (make fuzz: 2,000 files each) on 40 re-sealed .t1c and 40 damaged NIR files."""
    from .. import fuzz_readers

    for target in ("t1c", "nir"):
        summary = fuzz_readers.run(target, 40, seed=7)
        assert summary["failures"] == [], summary
        assert summary["verdicts"].get("refused", 0) > 0, summary
