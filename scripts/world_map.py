"""Make ``src/meldpunt/act/data/world-110m.json`` (the statistics' world map) from world-atlas's
``countries-110m.json``: Natural Earth's 1:110m countries (public domain) as TopoJSON (ISC,
Michael Bostock). Decodes the topology into one list of rings per ISO 3166-1 alpha-2 code
(Babel's CLDR aliases turn the numeric ids into letters), rounds to 0.1 degree, unwraps the rings that cross the antimeridian, drops Antarctica.

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    .venv/bin/python scripts/world_map.py package/countries-110m.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.core import get_global

OUT = Path(__file__).resolve().parent.parent / "src/meldpunt/act/data/world-110m.json"
#: the features Natural Earth gives no numeric code
BY_NAME = {"Kosovo": "XK", "N. Cyprus": "CY", "Somaliland": "SO"}


def main(source: Path) -> None:
    topo = json.loads(source.read_text())
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((round(x * sx + tx, 1), round(y * sy + ty, 1)))
        arcs.append(points)

    def ring(indices: list[int]) -> list[list[float]]:
        out: list[tuple[float, float]] = []
        for i in indices:
            points = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(points if not out else points[1:])
        kept = [p for n, p in enumerate(out) if n == 0 or p != out[n - 1]]
        # a ring that crosses the antimeridian (Russia's east, Fiji) jumps from +180 to -180:
        # unwrap it so it stays one shape (east of 180 degrees, inside the map's frame)
        unwrapped, shift = [], 0.0
        for n, (x, y) in enumerate(kept):
            if n and abs(x + shift - unwrapped[-1][0]) > 180:
                shift += 360.0 if unwrapped[-1][0] > x + shift else -360.0
            unwrapped.append((round(x + shift, 1), y))
        if min(x for x, _ in unwrapped) < -180:
            unwrapped = [(round(x + 360, 1), y) for x, y in unwrapped]
        return [list(p) for p in unwrapped]

    aliases = get_global("territory_aliases")
    countries: dict[str, list[list[list[float]]]] = {}
    for g in topo["objects"]["countries"]["geometries"]:
        code = BY_NAME.get(g["properties"]["name"]) or aliases[g["id"]][0]
        if code == "AQ":
            continue
        polygons = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        rings = [ring(r) for polygon in polygons for r in polygon]
        countries.setdefault(code, []).extend(r for r in rings if len(r) >= 3)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "source": "Natural Earth 1:110m countries (public domain), via world-atlas 2.0.2",
                "licence": "Natural Earth: public domain. world-atlas: ISC, Copyright 2013-2019 Michael Bostock",
                "countries": dict(sorted(countries.items())),
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    print(f"{OUT}: {len(countries)} countries, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
