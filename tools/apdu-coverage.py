#!/usr/bin/env python3
"""Coverage of applet-spec by the APDU conformance suites: apdu-tests/COVERAGE.md.

Reads the commands of applet-spec/credit-module.md (§4 table) and applet-spec/backup-store.md
(§5.0 table) and the status words of applet-spec/status-words.md, scans every step of
apdu-tests/credit-module and apdu-tests/backup-store (fragments included, the generated profile
wrappers excluded: they only include the tests), and writes a table from each command and each
status word to the steps that send it / expect it.

    tools/apdu-coverage.py            # rewrite apdu-tests/COVERAGE.md
    tools/apdu-coverage.py --check    # exit 1 if a command or status word has no covering step,
                                      # or if COVERAGE.md is not what this script would write

A step covers a status word when the word is one of its SW-PATTERN alternatives (`63Cx` covers
the 63Cx row). Stdlib only.
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
SPEC = os.path.join(ROOT, "applet-spec")
TESTS = os.path.join(ROOT, "apdu-tests")
OUT = os.path.join(TESTS, "COVERAGE.md")
MAX_REFS = 6

# Status words no conforming applet returns on purpose: listed, never required.
EXEMPT = {
    "6F00": "an uncaught exception: a defect of the applet, never expected by a test",
}


def read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def credit_commands():
    """(cla, ins, name) from the §4 lifecycle table of credit-module.md."""
    out = []
    for m in re.finditer(r"^\| `([0-9A-F]{2})` \| ([A-Z][A-Z ]+?)(?: \(CLA `00`, P1 `04`\))? \|", read(os.path.join(SPEC, "credit-module.md")), re.M):
        ins, name = m.group(1), m.group(2).strip()
        cla = "00" if ins == "A4" else "80"
        out.append((cla, ins, name))
    return out


def backup_commands():
    """(cla, ins, name) from the §5.0 summary table of backup-store.md."""
    text = read(os.path.join(SPEC, "backup-store.md"))
    sec = text[text.index("### 5.0 Summary"):text.index("### 5.1 SELECT")]
    out = []
    for m in re.finditer(r"^\| ([A-Z][A-Z ]+?) \| ([0-9A-F/]+) \| ([0-9A-F]{2}) \|", sec, re.M):
        name, cla, ins = m.group(1).strip(), m.group(2).split("/")[0], m.group(3)
        out.append((cla, ins, name))
    return out


def status_words():
    """[(sw, name, meaning, section)] in the order of status-words.md; plus 63Cx."""
    out = []
    section = None
    for line in read(os.path.join(SPEC, "status-words.md")).splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        m = re.match(r"^\| ([0-9A-F]{4}) \| (\w+) \| (.+?) \|$", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3), section))
    out.append(("63Cx", "WrongPasscode", "verification failed, x retries left", "backup store VERIFY"))
    return out


# Every command in every lifecycle state: which test sends every command in that state.
STATES = [
    "## Every command in every lifecycle state",
    "",
    "| applet | state | test sending every command of the spec's table in that state |",
    "|---|---|---|",
    "| credit module | personalisation (fresh, and fully personalised) | [lifecycle/1-personalisation.apdu](credit-module/lifecycle/1-personalisation.apdu) |",
    "| credit module | operational: idle, pending, provisional, completed | [lifecycle/2-operational.apdu](credit-module/lifecycle/2-operational.apdu), [initiate/6-pending.apdu](credit-module/initiate/6-pending.apdu), [apply-provisional.apdu](credit-module/apply-provisional.apdu), [apply-grant/6-already-applied.apdu](credit-module/apply-grant/6-already-applied.apdu) |",
    "| credit module | blocked (fraud threshold) | [lifecycle/3-blocked.apdu](credit-module/lifecycle/3-blocked.apdu), [attacks/mac-oracle.apdu](credit-module/attacks/mac-oracle.apdu) |",
    "| credit module | blocked (N = 2^32−1) | [lifecycle/4-counter-exhausted.apdu](credit-module/lifecycle/4-counter-exhausted.apdu), [lifecycle/5-counter-exhausted-at-personalisation.apdu](credit-module/lifecycle/5-counter-exhausted-at-personalisation.apdu) |",
    "| backup store | UNSET | [passcodes/unset.apdu](backup-store/passcodes/unset.apdu), [dispatch.apdu](backup-store/dispatch.apdu) |",
    "| backup store | READY | [states/1-ready.apdu](backup-store/states/1-ready.apdu), [passcodes/verify.apdu](backup-store/passcodes/verify.apdu), [passcodes/change.apdu](backup-store/passcodes/change.apdu), [manifest-2-paging.apdu](backup-store/manifest-2-paging.apdu) |",
    "| backup store | PAIRED / PAIRED+REPROVISIONING | [states/2-paired.apdu](backup-store/states/2-paired.apdu), [session/1-full.apdu](backup-store/session/1-full.apdu), [status-2-details.apdu](backup-store/status-2-details.apdu) |",
    "| backup store | SESSION / RECORD OPEN | [states/3-session.apdu](backup-store/states/3-session.apdu), [session/4-record-errors.apdu](backup-store/session/4-record-errors.apdu), [session/2-incremental.apdu](backup-store/session/2-incremental.apdu), [chaining.apdu](backup-store/chaining.apdu) |",
    "| backup store | LOCKED | [passcodes/blocked-pairing.apdu](backup-store/passcodes/blocked-pairing.apdu), [passcodes/blocked-reprovisioning.apdu](backup-store/passcodes/blocked-reprovisioning.apdu) |",
    "",
]

STEP = re.compile(r"^(?P<cmd>[^#]*?)\s*->\s*(?P<exp>[^#]*)")


def steps(suite):
    """Yields (relpath, line number, cla, ins, [sw alternatives]) for every step of a suite."""
    base = os.path.join(TESTS, suite)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not (suite == "credit-module" and d == "profiles" and dirpath == base))
        for f in sorted(filenames):
            if not f.endswith(".apdu"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, TESTS).replace(os.sep, "/")
            lines = read(path).splitlines()
            i = 0
            while i < len(lines):
                start = i
                text = lines[i]
                while text.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    text = text[:-1] + " " + lines[i]
                i += 1
                s = text.strip()
                if s.startswith(".select"):
                    m = re.search(r"->\s*(\S+)", s)
                    alts = m.group(1).split("|") if m else ["9000"]
                    yield rel, start + 1, "00", "A4", alts
                    continue
                if not s or s.startswith("#") or s.startswith("."):
                    continue
                m = STEP.match(s)
                if not m:
                    continue
                hexes = re.match(r"^([0-9A-Fa-f]{2})\s*([0-9A-Fa-f]{2})", m.group("cmd").strip())
                exp = m.group("exp").split()
                if not exp:
                    continue
                sw = "".join(exp[-1:])
                # alternatives written with spaces around '|'
                j = len(exp) - 1
                while j > 0 and (exp[j].startswith("|") or exp[j - 1].endswith("|")):
                    j -= 1
                    sw = exp[j] + sw
                alts = [a.upper() for a in sw.split("|") if a]
                cla, ins = (hexes.group(1).upper(), hexes.group(2).upper()) if hexes else (None, None)
                yield rel, start + 1, cla, ins, alts


def refs(items):
    shown = [f"[{r}:{n}]({r.split('/', 1)[0]}/{r.split('/', 1)[1]}#L{n})" for r, n in items[:MAX_REFS]]
    more = len(items) - MAX_REFS
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def build():
    missing = []
    out = ["# Conformance coverage of applet-spec",
           "",
           "Generated by `tools/apdu-coverage.py` from `applet-spec/` and the steps of",
           "`apdu-tests/credit-module` and `apdu-tests/backup-store` (fragments included; the",
           "generated `credit-module/profiles/*` wrappers, which run every credit-module test again for",
           "retail-mac and desx-cbc, are not counted). `tools/apdu-coverage.py --check` fails when a",
           "command or a status word has no covering step, or when this file is stale.",
           "",
           "A step covers a command when it sends that CLA/INS (`.select` counts as SELECT) and a status",
           "word when that word is one of its expected alternatives. Each cell shows the first",
           f"{MAX_REFS} steps (file:line) and how many more there are.",
           ""]
    suites = [("credit-module", "Credit module (applet-spec/credit-module.md §4)", credit_commands()),
              ("backup-store", "Backup store (applet-spec/backup-store.md §5)", backup_commands())]
    sw_refs = {}
    for suite, title, cmds in suites:
        all_steps = list(steps(suite))
        out += [f"## {title}", "", "| CLA | INS | command | steps sending it | steps expecting 9000 |", "|---|---|---|---|---|"]
        for cla, ins, name in cmds:
            # CLA compared without the logical-channel (b2-b1) and chaining (b5) bits.
            sent = [(r, n, alts) for r, n, c, i, alts in all_steps
                    if i == ins and c is not None and (int(c, 16) & 0xEC) == (int(cla, 16) & 0xEC)]
            ok = [(r, n) for r, n, alts in sent if "9000" in alts]
            if not ok:
                missing.append(f"{suite}: command {cla} {ins} {name} (no step expecting 9000)")
            out.append(f"| {cla} | {ins} | {name} | {len(sent)} | {len(ok)}: {refs(ok) or '**none**'} |")
        out.append("")
        for r, n, _, _, alts in all_steps:
            for a in alts:
                key = "63CX" if re.fullmatch(r"63C[0-9A-FX]", a) else a
                sw_refs.setdefault(key, {}).setdefault(suite, []).append((r, n))
    out += ["## Status words (applet-spec/status-words.md)", "",
            "| SW | name | meaning | credit-module steps | backup-store steps |", "|---|---|---|---|---|"]
    for sw, name, meaning, section in status_words():
        per = sw_refs.get(sw.upper(), {})
        cm, bs = per.get("credit-module", []), per.get("backup-store", [])
        if sw in EXEMPT:
            cell = f"exempt: {EXEMPT[sw]}"
            out.append(f"| {sw} | {name} | {meaning} | {cell} | {cell} |")
            continue
        if not cm and not bs:
            missing.append(f"status word {sw} {name}")
        if sw.startswith("9C") and not cm:
            missing.append(f"credit-module status word {sw} {name}")
        if sw.startswith("9D") and not bs:
            missing.append(f"backup-store status word {sw} {name}")
        fmt = lambda xs: f"{len(xs)}: {refs(xs)}" if xs else "—"
        out.append(f"| {sw} | {name} | {meaning} | {fmt(cm)} | {fmt(bs)} |")
    out.append("")
    out += STATES
    for line in STATES:
        for f in re.findall(r"\(([a-z-]+/[^)#]+\.apdu)\)", line):
            if not os.path.exists(os.path.join(TESTS, f)):
                missing.append(f"lifecycle table names a missing test {f}")
    return "\n".join(out), missing


def main():
    text, missing = build()
    check = "--check" in sys.argv[1:]
    status = 0
    for m in missing:
        print(f"not covered by any step: {m}", file=sys.stderr)
        status = 1
    if check:
        try:
            current = read(OUT)
        except FileNotFoundError:
            current = None
        if current != text:
            print("apdu-tests/COVERAGE.md is stale: run tools/apdu-coverage.py", file=sys.stderr)
            status = 1
    else:
        with open(OUT, "w", encoding="utf-8") as fh:
            fh.write(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
