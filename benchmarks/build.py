"""Cold build and warm load of twins: Montpellier (municipal GIS) and the largest OSM extract.

    python benchmarks/build.py [--quick]

Each case runs in a fresh subprocess with an empty cache (cold: read, derive, cache) and then a
second subprocess that loads the cached twin (warm), so the figures include interpreter start-up
and imports, as a user sees them. Targets: warm load <= 2 s, cold build <= 60 s for Montpellier.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _report import emit, target

REPO = Path(__file__).resolve().parents[1]
WARM_LIMIT_S = 2.0
COLD_LIMIT_S = 60.0

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import twin
t1 = time.perf_counter()
tw = twin.load(sys.argv[1], progress=False)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "total_s": t2 - t0,
                  "cached": "loaded_from_cache_s" in tw.meta, "counts": tw.counts()}))
"""


def _run(city: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, city], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _largest_osm(data: Path) -> str:
    from twin.cities import available_cities, get_city

    best, size = "bondy", 0
    for name in available_cities():
        src = get_city(name).source
        rel = src.get("osm") or src.get("graph")
        if src.get("kind") == "osm" and rel and (data / rel).is_file():
            s = (data / rel).stat().st_size
            if s > size:
                best, size = name, s
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one warm load instead of three")
    args = parser.parse_args()
    data = Path(os.environ.get("TWIN_DATA") or REPO.parent / "shared" / "data").resolve()
    cities = ["montpellier", _largest_osm(data)]
    figures: dict[str, float] = {}
    rows = []
    for city in cities:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TWIN_DATA": str(data), "TWIN_CACHE": cache, "TWIN_PROGRESS": "0"}
            cold = _run(city, env)
            warms = [_run(city, env) for _ in range(1 if args.quick else 3)]
        assert not cold["cached"]
        assert all(w["cached"] for w in warms)
        warm = min(float(w["total_s"]) for w in warms)
        figures[f"{city}_cold_s"] = round(float(cold["total_s"]), 2)
        figures[f"{city}_warm_s"] = round(warm, 2)
        figures[f"{city}_warm_load_only_s"] = round(min(float(w["load_s"]) for w in warms), 3)
        c = cold["counts"]
        rows.append((city, cold["total_s"], warm, c["light"], c["segment"], c["junction"]))

    print(
        f"{'city':<24}{'cold build s':>14}{'warm load s':>13}"
        f"{'lights':>9}{'segments':>10}{'junctions':>11}"
    )
    for city, cold_s, warm_s, nl, ns, nj in rows:
        print(f"{city:<24}{cold_s:>14.2f}{warm_s:>13.2f}{nl:>9,}{ns:>10,}{nj:>11,}")
    print("(times include interpreter start-up and imports; warm = best of the warm runs)")
    targets = {"montpellier_cold_s": target(figures["montpellier_cold_s"], COLD_LIMIT_S, "<=")}
    for city in cities:
        targets[f"{city}_warm_s"] = target(figures[f"{city}_warm_s"], WARM_LIMIT_S, "<=")
    ratios = {
        f"{c}_cold_over_warm": round(figures[f"{c}_cold_s"] / figures[f"{c}_warm_s"], 1)
        for c in cities
    }
    emit("build", figures, ratios=ratios, targets=targets)


if __name__ == "__main__":
    main()
