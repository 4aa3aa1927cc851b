"""Synthetic API payloads for the example pages (development only; the coordinator serves the real ones).

`python3 fixtures.py` rewrites fixtures/*.json: regions.json (the 46 regions of regions.toml with
a Red Sea-like slowdown), regions-100.json (100 synthetic regions, for the render-time check),
region-me-central.json, series-me-central.json and incidents.json. serve.py imports `detail` and
`series` to answer for any other region. Deterministic: the same input gives the same bytes.
Shapes follow the contract in ../README.md.
"""

import json
import math
import random
import tomllib
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATALOG = HERE.parents[2] / "regions.toml"
GENERATED_MS = 1764300000000

# A cable-cut story: the Gulf, India and East Africa slower towards Europe, Kenya unreachable.
STORY = {
    "me-central": ("degraded", 182.4, 95.0),
    "me-south": ("degraded", 171.0, 92.0),
    "me-west": ("degraded", 158.0, 88.0),
    "ap-south": ("degraded", 214.0, 121.0),
    "af-east": ("unreachable", None, 140.0),
    "eu-north": ("warming", 31.0, None),
    "sa-west": ("unknown", None, None),
    "nz-north": ("no-data", None, None),
}
TARGETS = [("web", "Example web"), ("api", "Example API")]


def rng_for(key):
    return random.Random(zlib.crc32(key.encode()))


def region(rid, name, lat, lon, continent, status=None, latency=None, baseline=None):
    r = rng_for(rid)
    if status is None:
        baseline = round(r.uniform(12, 140), 1)
        latency = round(baseline * r.uniform(0.9, 1.15), 1)
        status = "normal"
    probes = 3 if status != "no-data" else 0
    healthy = {"unreachable": 0, "no-data": 0, "unknown": 1}.get(status, probes)
    targets = []
    for tid, tname in TARGETS:
        c, cb = latency, baseline
        targets.append({
            "target": tid, "name": tname, "status": status,
            "connect_ms": c, "connect_base_ms": cb,
            "tls_ms": None if c is None else round(c * 1.05, 1),
            "tls_base_ms": None if cb is None else round(cb * 1.04, 1),
            "server_ms": None if c is None else round(r.uniform(15, 25), 1),
            "server_base_ms": None if cb is None else 20.0,
            "probes": probes,
            "affected": probes if status in ("degraded", "unreachable") else 0,
            "failures": probes if status == "unreachable" else 0,
        })
    return {
        "id": rid, "name": name, "lat": lat, "lon": lon, "continent": continent,
        "status": status, "probes": probes, "probes_healthy": healthy,
        "latency_ms": latency, "baseline_ms": baseline, "targets": targets,
        "incidents": [12] if status in ("degraded", "unreachable") else [],
    }


def catalog_regions():
    cat = tomllib.loads(CATALOG.read_text())
    out = []
    for c in cat["region"]:
        s = STORY.get(c["id"], (None, None, None))
        out.append(region(c["id"], c["name"], c["lat"], c["lon"], c["continent"], *s))
    return {"generated_ms": GENERATED_MS, "regions": out}


def synthetic_regions(n=100):
    """n regions scattered over populated latitudes, a tenth degraded, a few unreachable."""
    r = random.Random(100)
    out = []
    for i in range(n):
        lat = round(r.uniform(-40, 62), 2)
        lon = round(r.uniform(-125, 150), 2)
        roll = r.random()
        if roll < 0.1:
            base = round(r.uniform(40, 120), 1)
            s = ("degraded", round(base * r.uniform(1.6, 2.4), 1), base)
        elif roll < 0.13:
            s = ("unreachable", None, 90.0)
        elif roll < 0.16:
            s = ("warming", round(r.uniform(20, 90), 1), None)
        else:
            s = (None, None, None)
        out.append(region(f"syn-{i:03d}", f"Synthetic region {i}", lat, lon, "europe", *s))
    return {"generated_ms": GENERATED_MS, "regions": out}


def detail(reg):
    """The /api/v1/regions/ID body: the region plus per-phase p50/p95 now and usual."""
    r = rng_for(reg["id"] + "/phases")
    lat, base = reg["latency_ms"], reg["baseline_ms"]
    slow = 1.0 if lat is None or base is None else lat / base
    phases = []
    for phase, share in [("dns", 0.2), ("connect", 1.0), ("tls", 1.05), ("ttfb", 1.4), ("transfer", 0.3), ("total", 3.2)]:
        usual = None if base is None else round(max(base, 20.0) * share, 1)
        ref = usual if usual is not None else (lat or 60.0) * share
        affected = phase in ("connect", "tls", "ttfb", "total")
        now = None if lat is None else round(ref * (slow if affected else r.uniform(0.95, 1.05)), 1)
        phases.append({
            "phase": phase, "p50_ms": now, "p95_ms": None if now is None else round(now * 1.35, 1),
            "base_p50_ms": usual, "base_p95_ms": None if usual is None else round(usual * 1.3, 1),
            "count": 0 if now is None else 120,
        })
    return dict(reg, phases=phases)


def series(reg, phase="connect", hours=6):
    """The /api/v1/regions/ID/series body: one point a minute, a gap, the slowdown in the last hour."""
    r = rng_for(reg["id"] + "/series")
    step = 60000
    base = reg["baseline_ms"] or reg["latency_ms"]
    points = []
    if base is not None and reg["status"] != "no-data":
        n = hours * 60
        for i in range(n):
            if 200 <= i < 215:
                continue  # a quarter hour with no results
            t = GENERATED_MS - (n - 1 - i) * step
            lift = 1.0
            if reg["status"] in ("degraded", "unreachable") and i > n - 60:
                lift = (reg["latency_ms"] or base * 2) / base
            p50 = base * lift * (1 + 0.06 * math.sin(i / 9) + r.uniform(-0.04, 0.04))
            if reg["status"] == "unreachable" and i > n - 30:
                continue
            points.append({"t": t, "p50_ms": round(p50, 1), "p95_ms": round(p50 * r.uniform(1.2, 1.5), 1), "count": 20})
    return {"region": reg["id"], "phase": phase, "step_ms": step, "points": points}


def incidents():
    return {"incidents": [
        {"id": 12, "class": "regional-network", "state": "confirmed", "severity": "page",
         "regions": ["me-central", "me-south", "me-west", "ap-south", "af-east"],
         "region_names": ["the United Arab Emirates", "the Middle East", "Saudi Arabia", "Western India", "Kenya"],
         "targets": ["web", "api"], "onset_ms": GENERATED_MS - 3_300_000, "detected_ms": GENERATED_MS - 3_120_000,
         "resolved_ms": None, "ttd_ms": 180_000, "ttr_ms": None, "ttc_ms": 420_000,
         "explanation": "Members in the Gulf, India and East Africa see slow pages: the Red Sea corridor is congested."},
        {"id": 11, "class": "origin", "state": "resolved", "severity": "ticket",
         "regions": ["eu-west"], "region_names": ["Ireland"], "targets": ["api"],
         "onset_ms": GENERATED_MS - 90_000_000, "detected_ms": GENERATED_MS - 89_880_000,
         "resolved_ms": GENERATED_MS - 86_000_000, "ttd_ms": 120_000, "ttr_ms": 4_000_000, "ttc_ms": None,
         "explanation": "The API origin answered slowly from Ireland only."},
    ]}


def main():
    out = HERE / "fixtures"
    out.mkdir(exist_ok=True)
    regions = catalog_regions()
    me = next(r for r in regions["regions"] if r["id"] == "me-central")
    files = {
        "regions.json": regions,
        "regions-100.json": synthetic_regions(),
        "region-me-central.json": detail(me),
        "series-me-central.json": series(me),
        "incidents.json": incidents(),
    }
    for name, body in files.items():
        # The short ones indented to be read as examples; the long ones compact.
        small = name in ("region-me-central.json", "incidents.json")
        text = json.dumps(body, indent=1 if small else None, separators=None if small else (",", ":"), ensure_ascii=False)
        (out / name).write_text(text + "\n")
        print("wrote", out / name)


if __name__ == "__main__":
    main()
