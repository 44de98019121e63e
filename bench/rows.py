"""One figure of the serving benchmark: ours and the baseline's median, measured in one run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str  # what is measured, with its unit
    ours: float | None
    baseline: float | None
    baseline_name: str  # what the baseline is
    target: str  # the target, stated against the ratio or the value
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / baseline."""
        if self.ours is None or self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline
