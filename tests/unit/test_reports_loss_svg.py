"""The run pages' loss curves (``imgforge.reports.loss_svg``): a loss logged only in some rows (a LAPGAN level not
trained after a resume) or a NaN is left out of its line, not drawn as zero."""

from __future__ import annotations

import re

from imgforge.reports import loss_svg


def _panels(svg: str) -> dict:
    out = {}
    for g in re.findall(r"<g>(.*?)</g>", svg):
        title = re.search(r'font-size="12">([^<]*)</text>', g).group(1)
        pts = re.search(r'points="([^"]*)"', g)
        out[title.split(" (")[0]] = (title, [tuple(map(float, p.split(","))) for p in pts.group(1).split()]
                                     if pts else [])
    return out


def test_missing_and_nan_losses_are_left_out_not_zero() -> None:
    rows = [{"step": 1, "a": 2.0, "b": 5.0}, {"step": 2, "a": 3.0, "b": 6.0},
            {"step": 3, "a": float("nan")}, {"step": 4, "a": 4.0, "c": float("nan")}]
    p = _panels(loss_svg(rows))
    assert list(p) == ["a", "b", "c"]  # every loss of the run, in order of first appearance
    title, pts = p["a"]
    assert len(pts) == 3 and title == "a (last 4)"  # steps 1, 2, 4
    title, pts = p["b"]
    assert len(pts) == 2 and title == "b (last 6)"  # it ends at step 2 instead of dropping to zero
    # the same x axis (the run's steps 1...4) in every panel: b's line ends a third of the way along its panel
    pw = 760 // 3
    along = [(x - col * pw - 40) / (pw - 50) for col, x in ((0, p["a"][1][-1][0]), (1, pts[-1][0]))]
    assert abs(along[0] - 1.0) < 0.01 and abs(along[1] - 1 / 3) < 0.01
    assert p["c"] == ("c (no finite value)", [])
    assert loss_svg([]) == ""
