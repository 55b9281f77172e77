from __future__ import annotations

import io
import re
from pathlib import Path

import twin
from twin.progress import close_bars, progress_bar

REPO = Path(__file__).resolve().parents[1]


def test_the_setting_turns_every_bar_off_whatever_the_caller_asks():
    out = io.StringIO()
    with twin.set_options(progress=False):
        bar = progress_bar(total=4, desc="steps", file=out)  # the caller wants a bar
        bar.update(4)
        bar.close()
    assert bar.disable and out.getvalue() == ""


def test_a_bar_shows_when_both_allow_it_and_not_when_the_caller_declines():
    shown, declined = io.StringIO(), io.StringIO()
    with twin.set_options(progress=True):
        bar = progress_bar(total=4, desc="steps", file=shown, mininterval=0)
        bar.update(2)
        bar.close()
        off = progress_bar(total=4, desc="steps", file=declined, disable=True)
        off.update(2)
        off.close()
    assert "steps" in shown.getvalue() and "2/4" in shown.getvalue()
    assert declined.getvalue() == ""


def test_close_bars_erases_open_bars_so_the_next_line_is_clean():
    close_bars()  # bars another test in this process left open would share the screen's rows
    out = io.StringIO()
    with twin.set_options(progress=True):
        outer = progress_bar(total=8, desc="outer", file=out, mininterval=0)
        outer.update(3)
        inner = progress_bar(total=5, desc="inner", file=out, mininterval=0, position=1)
        inner.update(1)
    close_bars()
    assert outer.disable and inner.disable  # closed: neither redraws later
    out.write("twin: error: something\n")
    screen = render(out.getvalue())
    assert screen == ["twin: error: something"]


def test_no_tqdm_bar_is_made_outside_the_helper():
    """Every bar goes through the helper, so that TWIN_PROGRESS=0 reaches all of them."""
    offenders = []
    for package in ("twin", "optimize"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name == "progress.py" and path.parent.name == "twin":
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"^\s*(from tqdm|import tqdm)", text, flags=re.MULTILINE):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def render(stream: str) -> list[str]:
    """What a terminal shows after ``stream``: carriage returns, newlines and cursor-up."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(stream):
        if stream.startswith("\x1b[A", i):
            row = max(0, row - 1)
            i += 3
            continue
        ch = stream[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            col = 0
            while len(lines) <= row:
                lines.append([])
        else:
            line = lines[row]
            while len(line) <= col:
                line.append(" ")
            line[col] = ch
            col += 1
    text = ["".join(line).rstrip() for line in lines]
    return [t for t in text if t]


def test_an_error_after_a_nested_bar_starts_at_the_first_column():
    # the command line's case: the fetch bar sits at position 1 under a bar already gone
    close_bars()
    out = io.StringIO()
    with twin.set_options(progress=True):
        keeper = progress_bar(total=3, desc="keeper", file=io.StringIO(), mininterval=0)
        inner = progress_bar(total=5, desc="fetch dijon", file=out, mininterval=0)
        inner.update(1)
        keeper.close()
    close_bars()
    out.write("twin: error: something\n")
    assert render(out.getvalue()) == ["twin: error: something"]
