"""Live operation: telemetry in, commands out, the control-room service (to come).

The only package that does network and database I/O.
"""

from __future__ import annotations

__all__: list[str] = []
