#!/usr/bin/env python3
"""Plays conformance-suite commands through an independent PC/SC client and compares answers.

    tools/pcsc-sim.sh run -- tools/scriptor-crosscheck.py [--simkit BIN] PATH...

Runs `simkit test PATH... --card pcsc:$SIMKIT_PCSC_READER --json` (our runner, through genuine
PC/SC: pcscd -> vpcd -> card host), then, for every passed test whose steps are only commands
and SELECTs (no tear, power or reset directives, which scriptor cannot play), writes the exact
bytes our runner sent into a scriptor script that starts with the simulator's FACTORY_RESET
pseudo-APDU (`FF E3 00 00 00`, applet-spec/simulator.md) so both clients start from the same
factory-fresh card, runs pcsc-tools' `scriptor` on the same reader, and compares every response
(data and status word) byte for byte with what our runner received.

Exits 0 when every response matches, 1 on any difference (each one printed), 2 on usage or
tool errors. Standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PLAYABLE = {"command", "select"}
QUIET = {"echo", "note", "let", "default", "name", "requires", "quirk"}
FACTORY_RESET = "FF E3 00 00 00"


def fail(msg: str) -> None:
    print(f"scriptor-crosscheck: {msg}", file=sys.stderr)
    sys.exit(2)


def scriptor_responses(out: str) -> list:
    """The responses in scriptor's output: `< XX XX ... : meaning`, possibly over several lines."""
    responses, current = [], None
    for line in out.splitlines():
        if current is None:
            if line.startswith("< "):
                current = line[2:]
            else:
                continue
        else:
            current += " " + line
        if " : " in current:
            responses.append(current.split(" : ")[0].replace(" ", "").upper())
            current = None
    return responses


def spaced(hexstr: str) -> str:
    return " ".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--simkit", default="simkit", help="the simkit binary (default: on PATH)")
    ap.add_argument(
        "--cards-profile",
        default="apdu-tests/cards/simkit-pcsc.toml",
        help="card profile for the simulated reader",
    )
    args = ap.parse_args()
    reader = os.environ.get("SIMKIT_PCSC_READER")
    if not reader:
        fail("SIMKIT_PCSC_READER is not set: run under tools/pcsc-sim.sh")

    run = subprocess.run(
        [args.simkit, "--json", "test", *args.paths, "--card", f"pcsc:{reader}",
         "--cards-profile", args.cards_profile],
        capture_output=True, text=True,
    )
    if run.returncode not in (0, 1):
        fail(f"simkit test failed to run ({run.returncode}): {run.stderr.strip()}")
    try:
        doc = json.loads(run.stdout)
    except json.JSONDecodeError as e:
        fail(f"simkit test --json printed no JSON: {e}")

    played = skipped = compared = 0
    mismatches = []
    for test in doc["tests"]:
        if test["outcome"].get("status") != "passed":
            skipped += 1
            continue
        # `.fresh` before the first command is a no-op note; after one, the runner
        # factory-reset the card, and scriptor's script does the same.
        steps = [
            s for s in test["steps"]
            if s["action"] not in QUIET
            and not (s["action"] == "fresh" and s.get("note") != "card factory-reset")
        ]
        if not steps or any(
            s["action"] != "fresh" and (s["action"] not in PLAYABLE or "sent" not in s)
            for s in steps
        ):
            skipped += 1
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(FACTORY_RESET + "\n")
            for s in steps:
                sent = FACTORY_RESET if s["action"] == "fresh" else s["sent"].replace(" ", "")
                f.write(spaced(sent.replace(" ", "")) + "\n")
            script = f.name
        try:
            out = subprocess.run(
                ["scriptor", "-r", reader, script], capture_output=True, text=True, timeout=120
            )
        except FileNotFoundError:
            fail("scriptor not found (Debian package pcsc-tools)")
        finally:
            os.unlink(script)
        if out.returncode != 0:
            fail(f"scriptor failed on {test['file']}: {out.stderr.strip()}")
        theirs = scriptor_responses(out.stdout)[1:]  # the first answers FACTORY_RESET
        played += 1
        if len(theirs) != len(steps):
            mismatches.append(f"{test['file']}: scriptor gave {len(theirs)} answers, we sent {len(steps)}")
            continue
        for s, b in zip(steps, theirs):
            if s["action"] == "fresh":
                continue  # the reset's own answer (an ATR) is not compared
            a = (s.get("received") or "").upper() + s["sw"].split(" ")[0].upper()
            compared += 1
            if a != b:
                mismatches.append(f"{s['location']}: sent {s['sent']}\n  simkit:   {a}\n  scriptor: {b}")

    for m in mismatches:
        print(f"MISMATCH {m}")
    print(
        f"scriptor cross-check: {played} tests played, {compared} responses compared, "
        f"{len(mismatches)} differences; {skipped} tests not playable by scriptor "
        "(tears, power, reset, or not passed)"
    )
    if played == 0:
        print("nothing was compared", file=sys.stderr)
        return 1
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
