"""The one place that talks to HiGHS: quiet instances, pulp's HiGHS solver, quiet pulp solves.

HiGHS writes its banner with C to file descriptor 1 when its first instance is made, before any
option can be set and whatever Python's ``sys.stdout`` is (a notebook's, a captured one). Every
model in :mod:`optimize` (dimming, signal splits, MAXBAND) gets its HiGHS through this module, so
the banner is kept off standard output in one way everywhere, and pulp's HiGHS is always the
``highspy`` one (pulp 4 ships no CBC).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulp

__all__ = ["highs_solver", "new_highs", "quiet_stdout", "solve_quietly"]


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Point file descriptor 1 at ``os.devnull`` for the duration of the block.

    Without a standard output at all (``os.dup`` fails), the block runs unchanged.
    """
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no standard output: nothing to keep quiet
        yield
        return
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def new_highs(*, msg: bool = False) -> Any:
    """Return a ``highspy.Highs``, its banner and log kept quiet unless ``msg``."""
    import highspy

    if msg:
        return highspy.Highs()  # type: ignore[no-untyped-call]
    with quiet_stdout():
        h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    return h


def highs_solver(*, msg: bool = False, time_limit: float | None = None) -> pulp.LpSolver:
    """Return pulp's HiGHS solver (through ``highspy``), never a bundled CBC.

    Parameters
    ----------
    msg
        Show the solver log.
    time_limit
        Wall-clock limit in seconds, or ``None``.

    Returns
    -------
    pulp.LpSolver
        A ``pulp.HiGHS`` instance.

    Examples
    --------
    >>> highs_solver().name
    'HiGHS'
    """
    solver_cls = pulp.HiGHS
    params = inspect.signature(solver_cls.__init__).parameters
    kwargs: dict[str, Any] = {"msg": msg}
    if time_limit is not None:
        key = "timeLimit" if "timeLimit" in params else "time_limit"
        kwargs[key] = float(time_limit)
    solver: pulp.LpSolver = solver_cls(**kwargs)
    if not solver.available():
        msg_ = "pulp.HiGHS is not available: install highspy (pip install highspy)"
        raise ImportError(msg_)
    return solver


def solve_quietly(
    prob: pulp.LpProblem, *, time_limit: float | None = None, msg: bool = False
) -> int:
    """``prob.solve`` with pulp's HiGHS, its banner kept off standard output; pulp's status.

    Examples
    --------
    >>> from optimize._pulp import add_variable
    >>> m = pulp.LpProblem("demo", pulp.LpMaximize)
    >>> x = add_variable(m, "x", low=0.0, up=2.0)
    >>> m += x
    >>> pulp.LpStatus[solve_quietly(m)], x.varValue
    ('Optimal', 2.0)
    """
    solver = highs_solver(msg=msg, time_limit=time_limit)
    if msg:
        return int(prob.solve(solver))
    with quiet_stdout():
        return int(prob.solve(solver))
