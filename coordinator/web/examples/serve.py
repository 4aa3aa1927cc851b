"""Development server for the map assets (not used by the coordinator, which embeds web/ itself).

    python3 coordinator/web/examples/serve.py [--port 8123] [--regions regions-100.json]
                                              [--no-sse] [--expired] [--tick 3]

Lays out the URLs the coordinator will serve, with the same `Content-Security-Policy:
default-src 'self'` header:
  /assets/vendor/*      web/vendor/*
  /assets/*             web/static/*
  / and /map            examples/map.html, the fallback table rows rendered from the fixture
  /incidents            examples/incidents.html, rows rendered from fixtures/incidents.json
  /incidents/12         examples/scope.html
  /api/v1/regions[/ID[/series]], /api/v1/incidents   fixtures (fixtures.py synthesises the rest)
  /api/v1/events        text/event-stream: a `regions` event every --tick seconds with jittered
                        latencies, an `incident` event every fourth tick; 404 with --no-sse
--expired answers 401 on /api/ to exercise the redirect to /login.
"""

import argparse
import html
import json
import random
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import fixtures

HERE = Path(__file__).resolve().parent
WEB = HERE.parent
CSP = "default-src 'self'"
DASH = "\u2014"
# The coordinator's `status_words`, `ms` and `dur` template filters, for the rows rendered here.
STATUS_WORDS = {"normal": "Normal", "degraded": "Slower than usual", "unreachable": "Unreachable",
                "warming": "Learning baseline", "unknown": "Unknown", "no-data": "No data"}


def fmt_ms(v):
    return DASH if v is None else f"{v:.0f} ms"


def fmt_dur(ms):
    if ms is None:
        return DASH
    s = ms // 1000
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60000:
        return f"{ms / 1000:.1f} s"
    if ms < 3600000:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60} min"


def region_rows(regions):
    rows = []
    for r in regions:
        s = r["status"]
        rows.append(
            f'<tr data-region="{html.escape(r["id"])}"><td class="name">{html.escape(r["name"])}</td>'
            f'<td class="status" data-status="{html.escape(s)}">{STATUS_WORDS.get(s, "No data")}</td>'
            f'<td class="latency">{fmt_ms(r["latency_ms"])}</td><td class="baseline">{fmt_ms(r["baseline_ms"])}</td></tr>')
    return "\n".join(rows)


def incident_rows(incs):
    return "\n".join(
        f'<tr data-incident="{i["id"]}"><td class="id"><a href="/incidents/{i["id"]}">{i["id"]}</a></td>'
        f'<td class="class">{html.escape(i["class"])}</td><td class="state" data-state="{html.escape(i["state"])}">{html.escape(i["state"])}</td>'
        f'<td class="regions">{html.escape(", ".join(i["region_names"]))}</td>'
        f'<td class="detected">{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(i["detected_ms"] / 1000))}</td>'
        f'<td class="ttd num">{fmt_dur(i["ttd_ms"])}</td><td class="ttr num">{fmt_dur(i["ttr_ms"])}</td></tr>'
        for i in incs)


class Handler(SimpleHTTPRequestHandler):
    opts = None
    regions = None

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def send_body(self, code, ctype, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, body, code=200):
        self.send_body(code, "application/json", json.dumps(body))

    def send_file(self, path):
        if not path.is_file():
            return self.send_json({"error": "not found"}, 404)
        ctype = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".json": "application/json",
                 ".svg": "image/svg+xml"}.get(path.suffix, "application/octet-stream")
        self.send_body(200, ctype, path.read_bytes())

    def page(self, name, rows):
        text = (HERE / name).read_text().replace("<!-- rows -->", rows)
        self.send_body(200, "text/html; charset=utf-8", text)

    def do_GET(self):
        url = urlsplit(self.path)
        p = url.path
        if p.startswith("/assets/vendor/"):
            return self.send_file(WEB / "vendor" / Path(p).name)
        if p.startswith("/assets/"):
            return self.send_file(WEB / "static" / Path(p).name)
        if p in ("/", "/map"):
            return self.page("map.html", region_rows(self.regions["regions"]))
        if p == "/incidents":
            return self.page("incidents.html", incident_rows(fixtures.incidents()["incidents"]))
        if p.startswith("/incidents/"):
            return self.page("scope.html", "")
        if p == "/login":
            return self.send_body(200, "text/html; charset=utf-8", "<!doctype html><title>Sign in</title><p>Sign in (example).")
        if p.startswith("/api/") and self.opts.expired:
            return self.send_json({"error": "session expired"}, 401)
        if p == "/api/v1/regions":
            return self.send_json(self.regions)
        if p == "/api/v1/incidents":
            return self.send_json(fixtures.incidents())
        if p == "/api/v1/events":
            return self.events()
        parts = p.split("/")
        if p.startswith("/api/v1/regions/") and len(parts) in (5, 6):
            reg = next((r for r in self.regions["regions"] if r["id"] == parts[4]), None)
            if reg is None:
                return self.send_json({"error": f"unknown region {parts[4]!r}"}, 404)
            if len(parts) == 5:
                return self.send_json(fixtures.detail(reg))
            if parts[5] == "series":
                q = parse_qs(url.query)
                return self.send_json(fixtures.series(reg, q.get("phase", ["connect"])[0], int(q.get("hours", ["6"])[0])))
        return self.send_json({"error": "not found"}, 404)

    def events(self):
        if self.opts.no_sse:
            return self.send_json({"error": "no event stream in this example"}, 404)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        rng = random.Random()
        tick = 0
        states = ["open", "confirmed", "confirmed", "resolved"]
        try:
            while True:
                time.sleep(self.opts.tick)
                tick += 1
                payload = json.loads(json.dumps(self.regions))
                payload["generated_ms"] = fixtures.GENERATED_MS + tick * 60000
                for r in payload["regions"]:
                    if r["latency_ms"] is not None:
                        r["latency_ms"] = round(r["latency_ms"] * rng.uniform(0.9, 1.1), 1)
                if tick % 2 == 0 and payload["regions"]:
                    rng.choice(payload["regions"])["status"] = "degraded"
                self.wfile.write(f"event: regions\ndata: {json.dumps(payload)}\n\n".encode())
                if tick % 4 == 1:
                    inc = {"id": 12, "state": states[(tick // 4) % len(states)], "class": "regional-network"}
                    self.wfile.write(f"event: incident\ndata: {json.dumps(inc)}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--regions", default="regions.json", help="file under examples/fixtures/")
    ap.add_argument("--no-sse", action="store_true")
    ap.add_argument("--expired", action="store_true")
    ap.add_argument("--tick", type=float, default=3.0)
    opts = ap.parse_args()
    Handler.opts = opts
    Handler.regions = json.loads((HERE / "fixtures" / opts.regions).read_text())
    srv = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    srv.daemon_threads = True
    print(f"listening on http://127.0.0.1:{srv.server_address[1]}/map", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
