"""Do the characters hold a conversation? Scripted typed conversations through the real server.

    .venv/bin/python benchmarks/conversation.py                    # every installed preset
    .venv/bin/python benchmarks/conversation.py --preset fast      # one preset
    .venv/bin/python benchmarks/conversation.py --env VOICE_CHAT_LLM_TEMPERATURE=0.6 --label t06

For each preset a `voice-chat serve` is started, a card is imported over HTTP
(benchmarks/cards/captain_isla.json), and each shipped character plus the imported one gets a
fresh conversation of six typed lines over /v1/realtime (persona.SCRIPT: small talk, the user's
name, a question about the character, a joke or story, "are you an AI?", "what did I tell you
my name was?"). Every reply goes through the strict checks of benchmarks/persona.py. Beside
the scores: time from sending the line to the first reply audio byte, and the server's RSS.
Writes docs/benchmarks/conversation.json and conversation.png (results of earlier runs with
other labels are kept, so variants can be compared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from persona import CHECKS, SCRIPTS, Context, check_reply

from voice_chat.client.launcher import LiveServer, start_server
from voice_chat.client.rtclient import RealtimeClient
from voice_chat.engines.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
CARD = Path(__file__).resolve().parent / "cards" / "captain_isla.json"
SHIPPED = ["nova", "aria", "sage", "pip"]
NAMES = ["Maya", "Tomas", "Priya", "Jonas", "Lena", "Omar"]


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def pct(values: list[float], q: float) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.percentile(vals, q)) if vals else None


def import_card(server: LiveServer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Import the benchmark card over HTTP; return it and the character list."""
    with open(CARD, "rb") as f:
        r = httpx.post(
            server.url + "/v1/characters",
            files={"file": (CARD.name, f, "application/json")},
            timeout=60,
        )
    r.raise_for_status()
    listed = httpx.get(server.url + "/v1/characters", timeout=30).json()["characters"]
    return r.json(), listed


async def talk(
    server: LiveServer, character: str, card: dict[str, Any], user_name: str, script: str
) -> list[dict[str, Any]]:
    """One fresh conversation: the greeting, then every scripted line; each reply checked."""
    desc = str(card.get("description", ""))
    machine = bool(re.search(r"\b(ai|robot|android|machine|computer|program|bot)\b", desc, re.I))
    ctx = Context(char_name=card["name"], machine=machine, user_name=user_name)
    user = f"bench-{uuid.uuid4().hex[:8]}"
    out = []
    async with RealtimeClient.connect(server.ws_url, character=character, user=user) as rt:
        done = await rt.wait_for("response.done", timeout=180)
        greeting = done.event["response"]["text"]
        ctx.earlier.append(greeting)
        for line in SCRIPTS[script]:
            text = line.text.format(name=user_name)
            start = rt.mark()
            sent = time.monotonic()
            await rt.send(
                {"type": "conversation.item.create", "item": {"role": "user", "text": text}}
            )
            done = await rt.wait_for("response.done", timeout=240)
            response = done.event["response"]
            reply = response["text"]
            first_audio = next(
                (r.t for r in rt.log[start:] if r.audio is not None and r.t >= sent), None
            )
            if line.kind == "name":
                ctx.name_told = True  # the user says it in this very line
            checks = check_reply(reply, line, text, ctx)
            failed = {k: v for k, v in checks.items() if v}
            out.append(
                {
                    "character": character,
                    "kind": line.kind,
                    "user": text,
                    "reply": reply,
                    "status": response["status"],
                    "passed": not failed and response["status"] == "completed",
                    "failed": failed,
                    "first_audio_ms": round((first_audio - sent) * 1000, 1)
                    if first_audio
                    else None,
                    "server_metrics": response.get("metrics", {}),
                    "rss_mb": rss_mb(server.process.pid)["VmRSS"],
                    "greeting": greeting,
                }
            )
            ctx.earlier.append(reply)
            mark = "ok " if out[-1]["passed"] else "BAD"
            print(f"  {mark} {character:8s} {line.kind:9s} {reply[:90]!r} {failed or ''}")
    return out


async def run_preset(
    preset: str, env: dict[str, str], characters: list[str], script: str = "main"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        server = start_server(Path(tmp), env={"VOICE_CHAT_LLM_PRESET": preset, **env}, timeout=600)
        load_s = time.monotonic() - t0
        try:
            imported, listed = await asyncio.to_thread(import_card, server)
            cards = {c["id"]: c for c in listed}
            replies: list[dict[str, Any]] = []
            for i, cid in enumerate([*characters, imported["id"]]):
                replies += await talk(server, cid, cards[cid], NAMES[i % len(NAMES)], script)
            memory = rss_mb(server.process.pid)
        finally:
            server.stop()
    return {
        "load_s": round(load_s, 1),
        "rss": memory,
        "replies": replies,
        "imported": imported["id"],
    }


def summarize(result: dict[str, Any], shipped: list[str]) -> dict[str, Any]:
    replies = result["replies"]
    ship = [r for r in replies if r["character"] in shipped]
    other = [r for r in replies if r["character"] not in shipped]
    recall = [r for r in replies if r["kind"] == "recall"]
    audio = [r["first_audio_ms"] for r in replies]
    return {
        "shipped_passed": sum(r["passed"] for r in ship),
        "shipped_replies": len(ship),
        "imported_passed": sum(r["passed"] for r in other),
        "imported_replies": len(other),
        "name_recalled": sum("recall" not in r["failed"] for r in recall),
        "sessions": len(recall),
        "repeats": sum("no_repeat" in r["failed"] for r in replies),
        "failed_by_check": {c: sum(c in r["failed"] for r in replies) for c in CHECKS},
        "first_audio_ms_p50": pct(audio, 50),
        "first_audio_ms_p95": pct(audio, 95),
        "rss_mb_peak": round(result["rss"]["VmHWM"]),
        "rss_mb_end": round(result["rss"]["VmRSS"]),
        "load_s": result["load_s"],
    }


def print_table(runs: dict[str, Any]) -> None:
    print(
        f"\n{'run':24s} {'pass/24':>8s} {'import':>7s} {'recall':>7s} {'repeats':>7s} "
        f"{'audio p50':>9s} {'p95':>6s} {'RSS peak':>9s}"
    )
    for label, run in runs.items():
        s = run["summary"]
        print(
            f"{label:24s} {s['shipped_passed']:>4d}/{s['shipped_replies']:<3d} "
            f"{s['imported_passed']:>3d}/{s['imported_replies']:<3d} "
            f"{s['name_recalled']:>3d}/{s['sessions']:<3d} {s['repeats']:>7d} "
            f"{s['first_audio_ms_p50'] or 0:>9.0f} {s['first_audio_ms_p95'] or 0:>6.0f} "
            f"{s['rss_mb_peak']:>7d} MB"
        )


def plot(runs: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(runs)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(CHECKS))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        failed = runs[label]["summary"]["failed_by_check"]
        a.bar(x + i * width, [failed[c] for c in CHECKS], width, label=label)
    a.set_xticks(x + width * (len(labels) - 1) / 2, CHECKS, rotation=35, ha="right")
    a.set_ylabel("replies failing the check (of 30)")
    a.set_title("persona checks")
    a.legend(fontsize=8)
    p50 = [runs[k]["summary"]["first_audio_ms_p50"] or 0 for k in labels]
    p95 = [runs[k]["summary"]["first_audio_ms_p95"] or 0 for k in labels]
    xs = np.arange(len(labels))
    b.bar(xs - 0.2, p50, 0.4, label="first audio p50")
    b.bar(xs + 0.2, p95, 0.4, label="p95")
    for i, k in enumerate(labels):
        s = runs[k]["summary"]
        b.text(i, max(p95[i], p50[i]) + 30, f"{s['shipped_passed']}/24", ha="center")
    b.set_xticks(xs, labels, rotation=20, ha="right")
    b.set_ylabel("ms from the typed line to the first reply audio")
    b.set_title("time to first audio (label: replies passing, of 24)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def rescore(out: Path) -> int:
    """Run the checks again on the replies saved in conversation.json (after a check changed)."""
    path = out / "conversation.json"
    saved = json.loads(path.read_text())
    for run in saved["runs"].values():
        by_character: dict[str, list[dict[str, Any]]] = {}
        for r in run["replies"]:
            by_character.setdefault(r["character"], []).append(r)
        for i, (cid, replies) in enumerate(by_character.items()):
            name = NAMES[i % len(NAMES)]
            machine = cid == "pip"
            char_name = "Captain Isla" if cid.startswith("captain") else cid.capitalize()
            ctx = Context(char_name=char_name, machine=machine, user_name=name)
            ctx.earlier.append(replies[0].get("greeting", ""))
            script = SCRIPTS[run.get("script", "main")]
            for r, line in zip(replies, script, strict=False):
                if line.kind == "name":
                    ctx.name_told = True
                failed = {
                    k: v for k, v in check_reply(r["reply"], line, r["user"], ctx).items() if v
                }
                r["failed"], r["passed"] = failed, not failed and r["status"] == "completed"
                ctx.earlier.append(r["reply"])
        run["summary"] = summarize(run, SHIPPED)
    print_table(saved["runs"])
    path.write_text(json.dumps(saved, indent=1, default=float))
    plot(saved["runs"], out / "conversation.png")
    return 0


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", action="append", choices=list(PRESETS), help="default: all")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    ap.add_argument("--label", default="", help="suffix for this run's name in the results")
    ap.add_argument("--characters", default=",".join(SHIPPED))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    ap.add_argument("--script", choices=list(SCRIPTS), default="main", help="which lines")
    ap.add_argument("--rescore", action="store_true", help="check the saved replies again")
    args = ap.parse_args()
    if args.rescore:
        return rescore(args.out)
    env = dict(item.split("=", 1) for item in args.env)
    presets = args.preset or [p for p, v in PRESETS.items() if not v.missing()]
    characters = args.characters.split(",")
    out_json = args.out / "conversation.json"
    saved = json.loads(out_json.read_text()) if out_json.is_file() else {}
    runs: dict[str, Any] = saved.get("runs", {})
    for preset in presets:
        label = preset + (f"-{args.label}" if args.label else "")
        print(f"{label}:")
        result = await run_preset(preset, env, characters, args.script)
        result["script"] = args.script
        result["summary"] = summarize(result, SHIPPED)
        result["env"] = env
        result["date"] = time.strftime("%Y-%m-%d %H:%M")
        runs[label] = result
    machine = (
        f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print_table(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": machine, "runs": runs}, indent=1, default=float))
    plot(runs, args.out / "conversation.png")
    print(f"\nwrote {out_json} and {args.out / 'conversation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
