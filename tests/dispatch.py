"""Helper of the work-size dispatch tests (talon._compiled; the ``fresh_dispatch`` fixture is in conftest)."""

from talon._compiled import WorkThreshold


def decisions(monkeypatch) -> list[tuple[str, int, bool]]:
    """Every WorkThreshold decision from now on: (family, work, compiled)."""
    seen: list[tuple[str, int, bool]] = []
    real = WorkThreshold.use_compiled

    def recording(self, work, count=True):
        answer = real(self, work, count)
        seen.append((self.family, work, answer))
        return answer

    monkeypatch.setattr(WorkThreshold, "use_compiled", recording)
    return seen
