#!/usr/bin/env bash
# Install as users do: build a wheel, install it (non-editable, torch==2.13.0) into a fresh venv outside the
# repository, and run the shipped-weights commands offline from a directory outside the repository, with an empty
# HOME and cache. Every command must exit 0 and write its outputs. Called by .ci/run after the tests.
# Environment: PYTHON (default python3), IMGFORGE_SMOKE_KEEP=1 keeps the work folder for inspection.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/imgforge-wheel-smoke.XXXXXX")"
if [ "${IMGFORGE_SMOKE_KEEP:-0}" = 1 ]; then echo "wheel smoke: keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
fail() { echo "wheel smoke FAILED: $*" >&2; exit 1; }
step() { echo; echo "== wheel smoke: $*"; }
START=$SECONDS
echo "wheel smoke: work folder $WORK; free space there: $(df -h "$WORK" | awk 'NR==2{print $4}')"

# 1. A wheel built from the working tree (tracked + untracked-not-ignored files), so that stale build/ output in
#    a developer checkout cannot leak into it.
step "build the wheel"
SRC="$WORK/src"
mkdir -p "$SRC"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"; done | xargs -0 cp --parents -t "$SRC")
else
  cp -r "$REPO"/. "$SRC"
fi
(cd "$SRC" && set -x && "$PY" -m pip wheel --no-deps -q -w "$WORK/dist" .) || fail "pip wheel"
WHEEL=$(ls "$WORK"/dist/imgforge-*.whl 2>/dev/null | head -1)
[ -n "$WHEEL" ] || fail "no imgforge wheel in $WORK/dist"
echo "built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"
rm -rf "$SRC"

# 2. A fresh venv outside the repository; torch pinned (never a bare torch), imgforge from the wheel. No pip cache:
#    torch's wheel would add its size again to the disk this needs.
step "install the wheel into a fresh venv"
"$PY" -m venv "$WORK/venv" || fail "python -m venv"
(set -x && "$WORK/venv/bin/pip" install -q --no-cache-dir "torch==2.13.0" "$WHEEL") || fail "pip install torch==2.13.0 $WHEEL"
IMGFORGE="$WORK/venv/bin/imgforge"

# 3. Offline, empty HOME and caches, cwd outside the repository, nothing of the checkout on sys.path.
RUN="$WORK/run"
mkdir -p "$RUN/home" "$RUN/cache" "$RUN/in"
unset PYTHONPATH IMGFORGE_WEIGHTS_PATH IMGFORGE_CACHE_DIR TORCH_HOME
export IMGFORGE_OFFLINE=1 HOME="$RUN/home" XDG_CACHE_HOME="$RUN/cache"
cd "$RUN"
where=$("$WORK/venv/bin/python" -c "import imgforge; print(imgforge.__file__)")
case "$where" in "$WORK/venv/"*) echo "imgforge imported from $where" ;; *) fail "imgforge imported from $where, not the venv" ;; esac

photos="$REPO/../shared/data/photos"
if [ -f "$photos/astronaut.png" ] && [ -f "$photos/chelsea.png" ]; then
  cp "$photos/astronaut.png" in/content.png && cp "$photos/chelsea.png" in/style.png
else
  echo "(no ../shared/data/photos; using examples/images)"
  cp "$REPO/examples/images/astronaut.jpg" in/content.png && cp "$REPO/examples/images/swirls.jpg" in/style.png
fi

check() {  # check "what" cmd... ; then the files it must have written are named by EXPECT
  local what="$1"; shift
  step "$what"
  echo "+ imgforge $*"
  "$IMGFORGE" "$@" || fail "$what: imgforge $* exited $?"
  for f in "${EXPECT[@]}"; do [ -s "$f" ] || fail "$what: exited 0 but did not write $f"; done
  echo "ok: ${EXPECT[*]:-exit 0}"
}

EXPECT=(gatys.png); check "stylize gatys" --seed 0 stylize in/content.png --style in/style.png --size 64 -n 3 -o gatys.png
EXPECT=(fast.png); check "stylize fast" stylize in/content.png --method fast --size 64 -o fast.png
EXPECT=(adain.png); check "stylize adain" stylize in/content.png --method adain --style in/style.png --size 64 -o adain.png
EXPECT=(gen/seed0000.png gen/seed0001.png grid.png)
check "generate" --seed 0 generate --seeds 0-1 --out-dir gen --grid grid.png
EXPECT=(inv/content.png inv/content.latent.safetensors)
check "invert" --seed 0 invert in/content.png --steps 3 --batch-size 1 --out-dir inv
EXPECT=(dcgan.png); check "generate dcgan-mnist32" generate --weights dcgan-mnist32 --seeds 0-3 --grid dcgan.png
EXPECT=(sevens.png); check "generate cdcgan-mnist32 --class" generate --weights cdcgan-mnist32 --class 7 --seeds 0-3 --grid sevens.png
EXPECT=(vae.png); check "vae sample vae-mnist32" vae sample -w vae-mnist32 --seeds 0-3 --grid vae.png
EXPECT=(progan.png chain.png); check "generate progan-mnist32 --chain" generate --weights progan-mnist32 --seeds 0-3 --grid progan.png --chain chain.png
EXPECT=(msggan.png); check "generate msggan-mnist32" generate --weights msggan-mnist32 --seeds 0-3 --grid msggan.png
EXPECT=(lapgan.png); check "generate lapgan-mnist32" generate --weights lapgan-mnist32 --seeds 0-3 --grid lapgan.png
EXPECT=(); check "weights verify" weights verify

echo
echo "wheel smoke passed ($((SECONDS - START)) s)"
