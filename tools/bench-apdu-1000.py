#!/usr/bin/env python3
"""The 1,000-APDU comparison of issue 4, played by the conformance runner itself.

    cargo build --release -p simkit
    tools/pcsc-sim.sh run -- tools/bench-apdu-1000.py --simkit target/release/simkit [--runs 5]

One fixed script — SELECT the credit module, then 1,000 x GET STATUS (`80 10 00 00 31`, each
checked: 49 bytes and 9000) — run in one session by `simkit test` over the card host's socket
(`$SIMKIT_PCSC_SOCKET_CARD`, an identical card that is not in the reader), by `simkit test` over
genuine PC/SC (`pcsc:$SIMKIT_PCSC_READER`), and by pcsc-tools' `scriptor` on the same reader.
For simkit the time is the sum of the 1,000 GET STATUS steps' durations from the JSON report
(sending, receiving and checking each response; no process or card start-up). For scriptor it is
the wall time of the 1,001-command run minus that of a 1-command run (its Perl start-up and
connect). Prints the median of `--runs` runs per path, and the ratios the issue asks about.
Standard library only.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SELECT = "00 A4 04 00 09 F0 53 49 4D 4B 49 54 01 01"
STATUS = "80 10 00 00 31"
N = 1000


def simkit_run(simkit: str, script: str, card: str, profile: str) -> float:
    out = subprocess.run(
        [simkit, "--json", "test", script, "--card", card, "--cards-profile", profile],
        capture_output=True, text=True, check=False,
    )
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit(f"simkit test on {card} printed no report: {out.stderr.strip()}")
    (test,) = doc["tests"]
    if test["outcome"]["status"] != "passed":
        sys.exit(f"the script failed on {card}: {test['outcome']}")
    steps = [s for s in test["steps"] if s.get("sent", "").replace(" ", "").upper() == STATUS.replace(" ", "")]
    assert len(steps) == N, len(steps)
    return sum(s["duration_us"] for s in steps) / 1e3


def scriptor_run(reader: str, path: str) -> float:
    t = time.perf_counter()
    out = subprocess.run(["scriptor", "-r", reader, path], capture_output=True, text=True)
    elapsed = (time.perf_counter() - t) * 1e3
    if out.returncode != 0:
        sys.exit(f"scriptor: {out.stderr}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--simkit", default="simkit")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", default="apdu-tests/cards/simkit-pcsc.toml")
    args = ap.parse_args()
    reader = os.environ.get("SIMKIT_PCSC_READER")
    socket_card = os.environ.get("SIMKIT_PCSC_SOCKET_CARD")
    if not reader or not socket_card:
        sys.exit("run under tools/pcsc-sim.sh (SIMKIT_PCSC_READER / SIMKIT_PCSC_SOCKET_CARD)")
    d = tempfile.mkdtemp()
    script = os.path.join(d, "status-1000.apdu")
    with open(script, "w") as f:
        f.write('.name "SELECT, then 1,000 x GET STATUS"\n')
        f.write(f"{SELECT} -> 9000\n")
        for _ in range(N):
            f.write(f"{STATUS} -> {'.. ' * 49}9000\n")
    full = os.path.join(d, "scriptor-1001.txt")
    one = os.path.join(d, "scriptor-1.txt")
    with open(full, "w") as f:
        f.write(SELECT + "\n" + (STATUS + "\n") * N)
    with open(one, "w") as f:
        f.write(SELECT + "\n")

    socket_ms, pcsc_ms, scriptor_ms = [], [], []
    simkit_run(args.simkit, script, socket_card, args.profile)  # warm-up
    simkit_run(args.simkit, script, f"pcsc:{reader}", args.profile)
    for _ in range(args.runs):
        socket_ms.append(simkit_run(args.simkit, script, socket_card, args.profile))
        pcsc_ms.append(simkit_run(args.simkit, script, f"pcsc:{reader}", args.profile))
        scriptor_ms.append(scriptor_run(reader, full) - scriptor_run(reader, one))
    med = {k: statistics.median(v) for k, v in
           (("socket", socket_ms), ("pcsc", pcsc_ms), ("scriptor", scriptor_ms))}
    result = {
        "apdus": N,
        "runs": args.runs,
        "median_ms": med,
        "all_ms": {"socket": socket_ms, "pcsc": pcsc_ms, "scriptor": scriptor_ms},
        "pcsc_over_socket": med["pcsc"] / med["socket"],
        "scriptor_over_simkit_pcsc": med["scriptor"] / med["pcsc"],
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
