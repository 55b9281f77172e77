"""Progress bars of long runs, all made here so that one setting governs them.

Every bar in ``twin`` and ``optimize`` is made by :func:`progress_bar`, a drop-in for
``tqdm.auto.tqdm``: the settings' ``progress`` (env ``TWIN_PROGRESS=0``) turns every bar off,
whatever the caller asked for. :func:`close_bars` closes and erases the bars still open, so that
the command line prints an error on a clean line rather than in the middle of a bar.

>>> from twin.settings import set_options
>>> with set_options(progress=False):
...     bar = progress_bar(total=3, desc="steps")
>>> bar.disable
True
>>> bar.close()
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

from .settings import get_settings

__all__ = ["close_bars", "progress_bar"]

_open: weakref.WeakSet[Any] = weakref.WeakSet()


def progress_bar(
    iterable: Iterable[Any] | None = None, *, disable: bool = False, **kwargs: Any
) -> Any:
    """Make a ``tqdm`` bar, shown only where the caller and the settings both allow it.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, as for ``tqdm``.
    disable : bool
        The caller's own switch (a function's ``progress=False``).
    **kwargs
        Any other ``tqdm`` option (``total``, ``desc``, ``unit``, ``leave``, ...).

    Returns
    -------
    tqdm.tqdm
        A bar (the notebook one inside Jupyter); a disabled one when the settings' ``progress``
        is off, so that callers never test for ``None``.
    """
    show = get_settings().progress and not disable
    bar = tqdm(iterable, disable=not show, **kwargs)
    if show:
        _open.add(bar)
    return bar


def close_bars() -> None:
    """Close and erase every bar still open, innermost first.

    The command line calls it before it prints an error, so that no bar is redrawn after (or
    around) the error line, and the terminal shows the error alone.
    """
    streams: list[Any] = []
    for bar in sorted(_open, key=lambda b: -abs(int(getattr(b, "pos", 0) or 0))):
        fp = getattr(bar, "fp", None)
        if not bar.disable and fp is not None and all(fp is not f for f in streams):
            streams.append(fp)
        bar.leave = False
        bar.close()
    _open.clear()
    # a bar below another one (position 1 or more) erases its row with blanks and leaves the
    # cursor after them; the next line must start at the first column
    for fp in streams:
        with contextlib.suppress(OSError, ValueError):
            fp.write("\r")
            fp.flush()
