#!/usr/bin/env python3
"""Seeds the corpora of every cargo-fuzz target from the repository's real inputs.

Writes host/{core,conformance,server}/fuzz/corpus/<target>/ (git-ignored) from
applet-spec/vectors/*.json (APDUs, responses, messages, TLV data) and apdu-tests/**/*.apdu
(scripts, their expressions and expectations). Each seed file is named by the SHA-1 of its
content, as libFuzzer names the inputs it adds, so running this again adds nothing twice.
Usage: host/core/fuzz/seed-corpora.py   (from anywhere; takes no argument)
"""

import hashlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
VECTORS = ROOT / "applet-spec" / "vectors"
SUITES = ROOT / "apdu-tests"
HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")

corpora: dict[tuple[str, str], set[bytes]] = {}


def add(crate: str, target: str, data: bytes) -> None:
    corpora.setdefault((crate, target), set()).add(data)


def hex_strings(node):
    """Every even-length hex string anywhere in a JSON tree."""
    if isinstance(node, dict):
        for v in node.values():
            yield from hex_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from hex_strings(v)
    elif isinstance(node, str) and HEX.match(node):
        yield bytes.fromhex(node)


def apdu_data(cmd: bytes) -> bytes:
    """The data field of a short or extended command APDU (empty if it has none)."""
    if len(cmd) <= 5:
        return b""
    if cmd[4] != 0:
        return cmd[5 : 5 + cmd[4]]
    if len(cmd) >= 7:
        n = int.from_bytes(cmd[5:7], "big")
        return cmd[7 : 7 + n]
    return b""


# --- applet-spec/vectors: APDUs, responses, messages, TLV -----------------------------------
credit = json.loads((VECTORS / "credit-module.json").read_text())
backup = json.loads((VECTORS / "backup-store.json").read_text())
reload_requests: list[bytes] = []
completions: list[bytes] = []
for blob in hex_strings([credit, backup]):
    add("core", "apdu_parse", blob)
    add("core", "message_decode", blob)
    add("core", "tlv_parse", blob)
for profile in credit["profiles"]:
    for step in profile.get("personalisation", []) + profile.get("exchanges", []):
        cmd = bytes.fromhex(step["command"])
        resp = bytes.fromhex(step["response"])
        data, sw = resp[:-2], resp[-2:]
        for blob in (apdu_data(cmd), data):
            if blob:
                add("core", "message_decode", blob)
                add("core", "tlv_parse", blob)
                # message_decode's first byte picks the profile of its module and server part.
                for sel in range(3):
                    add("core", "message_decode", bytes([sel]) + blob)
        name = step["name"]
        if name.startswith("initiate reload") and sw == b"\x90\x00" and data:
            reload_requests.append(data)
        if "completion" in name and sw == b"\x90\x00" and data:
            completions.append(data)
        add("conformance", "sw_pattern", f"{data.hex().upper()} {sw.hex().upper()}".encode() + b"\n" + resp)
for blob in hex_strings(backup):
    add("core", "manifest_parse", blob)

# --- apdu-tests: scripts, expressions, expectations ------------------------------------------
def strip_comment(line: str) -> str:
    out, in_str, esc = [], False, False
    for c in line:
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "#":
            break
        out.append(c)
    return "".join(out).strip()


for path in sorted(SUITES.rglob("*.apdu")):
    text = path.read_text(errors="replace")
    # Script::parse_str refuses `.include` (it needs a file); the rest of the script is the seed.
    script = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith(".include"))
    add("conformance", "script_parse", script.encode())
    for raw in text.replace("\\\n", " ").splitlines():
        line = strip_comment(raw)
        if not line:
            continue
        if line.startswith((".let", ".default")) and "=" in line:
            add("conformance", "expr_eval", line.split("=", 1)[1].strip().encode())
        elif line.startswith(".select"):
            add("conformance", "expr_eval", line[len(".select"):].split("->")[0].strip().encode())
        elif "->" in line and not line.startswith("."):
            cmd, expect = line.split("->", 1)
            add("conformance", "expr_eval", cmd.strip().encode())
            add("conformance", "sw_pattern", expect.strip().encode() + b"\n\x90\x00")

# --- the signer's bodies: op byte, module-id selector, body (see server_bodies.rs) -----------
KNOWN = b"\x00"
for r in reload_requests:
    add("server", "server_bodies", b"\x00" + KNOWN + r)
for c in completions:
    add("server", "server_bodies", b"\x01" + KNOWN + c)
limits = {"min_reload": 100, "max_reload": 50000, "upper": 100000, "credit_line": 2000}
registration = {
    "format": "simkit-registration/1", "module_id": "A102030405060708", "profile": "aes-cmac",
    "initial_n": 0, "initial_balance": 0, "limits": limits, "fraud_threshold": 5,
    "server_address": "https://reload.example/v1/reload",
    "master_key_kcv": "000000", "request_key_kcv": "000000", "grant_key_kcv": "000000",
}
bodies = {
    2: {"registration": registration, "account_id": "acct-1", "initial_funds": 1000},
    3: {"n": 9},
    4: {"limits": limits},
    5: {"sequence": 1},
}
for op, body in bodies.items():
    add("server", "server_bodies", bytes([op]) + KNOWN + json.dumps(body).encode())
for op in (6, 7, 10, 11):
    add("server", "server_bodies", bytes([op]) + KNOWN)
add("server", "server_bodies", b"\x08" + KNOWN + b"fuzz-account")
add("server", "server_bodies", b"\x09" + KNOWN + b"7")

written = 0
for (crate, target), seeds in sorted(corpora.items()):
    out = ROOT / "host" / crate / "fuzz" / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        f = out / hashlib.sha1(s).hexdigest()
        if not f.exists():
            f.write_bytes(s)
            written += 1
    print(f"{crate}/{target}: {len(seeds)} seeds", file=sys.stderr)
print(f"{written} new seed files", file=sys.stderr)
