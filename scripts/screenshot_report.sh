#!/usr/bin/env bash
# Render a demo report in headless Chromium and save a full-height screenshot.
#   scripts/screenshot_report.sh demo_output/report.html demo_output/report.png [height_px]
# Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
report=$(readlink -f "${1:-demo_output/report.html}")
out=${2:-${report%.html}.png}
height=${3:-6000}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size=1400,"$height" \
  --screenshot="$(readlink -f "$(dirname "$out")")/$(basename "$out")" "file://$report" 2>/dev/null
echo "$out"
