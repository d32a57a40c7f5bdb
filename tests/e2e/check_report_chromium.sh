#!/bin/bash
# check_report_chromium.sh -- renders a report.html in headless Chromium and
# checks that the page really draws: the screenshot exists, is not blank
# (many colours, enough non-white pixels), and Chromium logged no console
# errors or blocked loads for it.
#
#   tests/e2e/check_report_chromium.sh REPORT.html [OUT.png]
#
# Exit: 0 ok, 1 check failed, 2 usage, 77 no chromium (or no python3 + PIL).
set -u
html=${1:-}
if [ -z "$html" ] || [ ! -f "$html" ]; then
    echo "usage: $0 REPORT.html [OUT.png]" >&2
    exit 2
fi
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
    echo "SKIP: chromium not found" >&2
    exit 77
fi
py=/usr/bin/python3
if ! [ -x "$py" ] || ! "$py" -c 'import PIL' 2>/dev/null; then
    echo "SKIP: /usr/bin/python3 with PIL not found" >&2
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chromium-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
png=${2:-$work/shot.png}
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")

# A private HOME keeps Chromium from touching the user's profile; the
# logging flags send console messages to stderr, where we look for errors.
HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_CACHE_HOME="$work/home/.cache" \
    timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --no-default-browser-check --disable-extensions \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 \
    --screenshot="$png" --window-size=1200,2000 "file://$abs" \
    >"$work/stdout" 2>"$work/stderr"
rc=$?
if [ $rc -ne 0 ] || [ ! -s "$png" ]; then
    echo "FAIL: chromium exited $rc and wrote no screenshot" >&2
    tail -20 "$work/stderr" >&2
    exit 1
fi

# Console errors and blocked resources (CSP violations, failed loads) show
# up as CONSOLE lines or net errors naming the page.
if grep -E 'CONSOLE|Uncaught|Refused to|Content Security Policy|ERR_[A-Z_]+' "$work/stderr" |
        grep -v -E 'dbus|GPU|gpu|Fontconfig|sandbox' >"$work/errors"; then
    if [ -s "$work/errors" ]; then
        echo "FAIL: console errors while rendering $html:" >&2
        cat "$work/errors" >&2
        exit 1
    fi
fi

"$py" - "$png" <<'EOF'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
w, h = im.size
small = im.resize((w // 4, h // 4))
px = list(small.getdata())
colours = len(set(px))
nonwhite = sum(1 for p in px if min(p) < 240) / len(px)
print(f"screenshot {w}x{h}: {colours} distinct colours, {nonwhite:.1%} non-white")
if colours < 50 or nonwhite < 0.05:
    print("FAIL: the screenshot looks blank", file=sys.stderr)
    sys.exit(1)
EOF
st=$?
[ $st -eq 0 ] && echo "OK: $html renders"
exit $st
