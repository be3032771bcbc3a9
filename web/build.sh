#!/usr/bin/env bash
# Builds the web verifier into a folder any static host can serve (default dist/):
#   dist/index.html, app.js, style.css   the demo page (+ sw.js, which keeps it for offline visits)
#   dist/facepatch/                      the package an app imports as-is: package.json, facepatch.js (+ .d.ts),
#                                        worker.js, the wasm core, models/ (+ manifest.json of sizes and SHA-256)
# Needs the wasm32 target and wasm-bindgen-cli (bash .ci/install); wasm-opt (npm binaryen) when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
models=(retinaface rrf56 rrf28)

cargo build --release --lib --target wasm32-unknown-unknown -q
rm -rf "$out"
pkg="$out/facepatch"
mkdir -p "$pkg/models"
wasm-bindgen --target web --no-typescript --out-dir "$pkg" --out-name facepatch_core \
  target/wasm32-unknown-unknown/release/facepatch.wasm
if [ -x node_modules/.bin/wasm-opt ]; then
  # Debian's older binaryen writes modules that fail to load; the npm one is pinned in package.json.
  node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-reference-types --enable-multivalue "$pkg/facepatch_core_bg.wasm" -o "$pkg/facepatch_core_bg.wasm"
fi
cp web/lib/facepatch.js web/lib/facepatch.d.ts web/lib/worker.js web/lib/package.json "$pkg/"
cp models/LICENSE-* "$pkg/models/"
files=()
for m in "${models[@]}"; do
  files+=("$m.json" "$m.safetensors")
  [ -f "models/$m.calibration.json" ] && files+=("$m.calibration.json")
done
{
  printf '{\n  "models": ["rrf56", "rrf28"],\n  "files": {\n'
  sep=""
  for f in "${files[@]}"; do
    cp "models/$f" "$pkg/models/$f"
    printf '%s    "%s": {"size": %d, "sha256": "%s"}' "$sep" "$f" "$(stat -c %s "models/$f")" \
      "$(sha256sum "models/$f" | cut -d' ' -f1)"
    sep=$',\n'
  done
  printf '\n  }\n}\n'
} >"$pkg/models/manifest.json"
cp web/index.html web/app.js web/style.css web/sw.js "$out/"
echo "built $out ($(du -sh "$out" | cut -f1)); wasm core $(du -h "$pkg/facepatch_core_bg.wasm" | cut -f1)"
