#!/usr/bin/env bash
# Re-fetch (or, with --check, verify) the vendored browser libraries of the latency map.
#
# Why vendored: the coordinator embeds coordinator/web/ in its binary with include_bytes! and
# serves it under a `default-src 'self'` CSP. The binary must build and run offline, so
# `cargo build` must never need npm or a CDN; these files are checked in instead, and this
# script is the only thing that talks to the npm registry, on demand, by a human or a CI job.
#
# Usage: coordinator/web/vendor/fetch.sh           # download the pinned versions, refresh files + MANIFEST
#        coordinator/web/vendor/fetch.sh --check   # download again, exit 1 unless every vendored file
#                                                  # (and MANIFEST) matches byte for byte
#
# Packages are fetched one by one with `npm pack` at exact versions: no dependency resolution,
# no lifecycle scripts, and npm verifies each tarball's integrity against the registry.
# internmap and d3-array are d3-geo's dependencies; they are pinned here explicitly.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# package@version  path-in-package  vendored-name
files=(
  "internmap@2.0.3        dist/internmap.min.js              internmap.min.js"
  "d3-array@3.2.5         dist/d3-array.min.js               d3-array.min.js"
  "d3-geo@3.1.2           dist/d3-geo.min.js                 d3-geo.min.js"
  "topojson-client@3.1.0  dist/topojson-client.min.js        topojson-client.min.js"
  "world-atlas@2.0.2      countries-110m.json                countries-110m.json"
  "internmap@2.0.3        LICENSE                            LICENSE.internmap"
  "d3-array@3.2.5         LICENSE                            LICENSE.d3-array"
  "d3-geo@3.1.2           LICENSE                            LICENSE.d3-geo"
  "topojson-client@3.1.0  LICENSE                            LICENSE.topojson-client"
  "world-atlas@2.0.2      LICENSE                            LICENSE.world-atlas"
)

mode=refresh
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/out"

# Download and unpack each distinct package once.
for spec in $(printf '%s\n' "${files[@]}" | awk '{print $1}' | sort -u); do
  tgz="$(cd "$tmp" && npm pack --silent --ignore-scripts "$spec" | tail -n 1)"
  mkdir -p "$tmp/pkg/$spec"
  tar -xzf "$tmp/$tgz" -C "$tmp/pkg/$spec" --strip-components=1
done

: >"$tmp/out/MANIFEST"
for line in "${files[@]}"; do
  read -r spec src name <<<"$line"
  cp "$tmp/pkg/$spec/$src" "$tmp/out/$name"
  sum="$(sha256sum "$tmp/out/$name" | awk '{print $1}')"
  size="$(wc -c <"$tmp/out/$name" | tr -d ' ')"
  printf '%s  %s  %s  %s\n' "$sum" "$size" "$name" "$spec" >>"$tmp/out/MANIFEST"
done

if [[ "$mode" == check ]]; then
  bad=0
  for f in "$tmp"/out/*; do
    name="$(basename "$f")"
    if ! cmp -s "$f" "$here/$name"; then
      echo "MISMATCH: $name differs from the pinned upstream file (or is missing)" >&2
      bad=1
    fi
  done
  if [[ "$bad" -ne 0 ]]; then
    echo "vendored files do not match; run $0 to refresh them" >&2
    exit 1
  fi
  echo "ok: ${#files[@]} vendored files and MANIFEST match the pinned packages"
else
  cp "$tmp"/out/* "$here/"
  echo "refreshed ${#files[@]} files and MANIFEST in $here"
fi
