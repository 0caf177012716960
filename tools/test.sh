#!/usr/bin/env bash
# Runs every simkit test: formatting and lints, the Rust test suites (unit, property, attack,
# vector and CLI tests), the Java applet/card-host tests, and a short fuzz run of every fuzz target.
# Exits non-zero on the first failure. Set SIMKIT_FUZZ_SECONDS to change the fuzz time per target
# (default 15; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

if [ -f applets/pom.xml ]; then
  step "mvn verify (applets and card host; builds the jar the Rust tests start)"
  mvn -B -q -f applets/pom.xml verify
fi

step "apdu-tests: coverage of applet-spec and the generated profile wrappers are up to date"
python3 tools/apdu-coverage.py --check
python3 tools/apdu-profile-wrappers.py --check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -q -- -D warnings

step "cargo test"
cargo test --workspace --locked

if [ -d apdu-tests/credit-module ]; then
  step "APDU conformance suites on the simulator (JUnit: target/apdu-tests.xml)"
  # The debug binary `cargo test` just built: a release build would cost CI minutes, not save them.
  cargo run -q --locked -p simkit -- test apdu-tests --jobs 2 --junit target/apdu-tests.xml
  step "backup-store suite with short APDUs only (a reader without extended length)"
  cargo run -q --locked -p simkit -- test apdu-tests/backup-store --jobs 2 \
    --cards-profile apdu-tests/cards/jcardsim-short.toml --junit target/apdu-tests-short.xml
fi

# The PC/SC tests need a reader; tools/pcsc-sim.sh gives them a private pcscd whose vpcd reader
# holds a simulated card (without it they only print "skipped").
if command -v pcscd >/dev/null && [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ]; then
  step "PC/SC: pcscd → vpcd → card host (tools/pcsc-sim.sh)"
  tools/pcsc-sim.sh run -- cargo test -p simkit-card --test pcsc --locked
  tools/pcsc-sim.sh run -- cargo test -p simkit --test readers --locked
  step "APDU conformance suites through PC/SC (JUnit: target/apdu-tests-pcsc.xml)"
  mkdir -p target
  tools/pcsc-sim.sh run -- sh -c 'cargo run -q --locked -p simkit -- test apdu-tests --card "pcsc:$SIMKIT_PCSC_READER" --cards-profile apdu-tests/cards/simkit-pcsc.toml --junit target/apdu-tests-pcsc.xml'
  step "scriptor (pcsc-tools) plays the suites' commands on the same reader: answers must be identical"
  tools/pcsc-sim.sh run -- sh -c 'python3 tools/scriptor-crosscheck.py --simkit "${CARGO_TARGET_DIR:-target}/debug/simkit" apdu-tests/credit-module apdu-tests/backup-store'
else
  step "PC/SC tests skipped: pcscd or vsmartcard-vpcd missing (run tools/setup.sh)"
  [ "${CI:-}" = "true" ] && { echo "CI requires the PC/SC tests" >&2; exit 1; }
fi

fuzz_seconds="${SIMKIT_FUZZ_SECONDS:-15}"
# One cargo-fuzz crate per library with parsers, each its own workspace (nightly, sanitizers):
# core (APDUs, TLV, messages, manifests), conformance (.apdu scripts, expressions, response
# patterns), server (the signer's request bodies through its router). The server crate builds
# without AddressSanitizer: its target looks for panics and 5xx answers in safe Rust, ASan would
# only instrument the bundled SQLite (fuzzed upstream; it also trips ASan's ODR check on two
# static `aiOff` arrays of the amalgamation), and its heavy dependency tree builds faster without.
fuzz_crates=(host/core/fuzz host/conformance/fuzz host/server/fuzz)
if [ -d host/core/fuzz ] && [ "$fuzz_seconds" != "0" ]; then
  if command -v cargo-fuzz >/dev/null && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    step "fuzz corpora seeded from applet-spec/vectors and apdu-tests (host/core/fuzz/seed-corpora.py)"
    python3 host/core/fuzz/seed-corpora.py
    mkdir -p target
    for crate in "${fuzz_crates[@]}"; do
      for target in $(cd "$crate" && cargo +nightly fuzz list); do
        step "fuzz $target ($crate) for ${fuzz_seconds}s"
        log="target/fuzz-$target.log"
        sanitizer=()
        [ "$crate" = host/server/fuzz ] && sanitizer=(--sanitizer none)
        if (cd "$crate" && cargo +nightly fuzz run "${sanitizer[@]}" "$target" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=2048) >"$log" 2>&1; then
          tail -n 3 "$log"
        else
          # The crash, its input (crate/artifacts/target/) and the command to reproduce it.
          tail -n 60 "$log" >&2
          echo "fuzz target $target failed: full output in $log" >&2
          exit 1
        fi
      done
    done
  else
    step "fuzzing skipped: cargo-fuzz or the nightly toolchain is missing (run tools/setup.sh)"
    [ "${CI:-}" = "true" ] && { echo "CI requires the fuzz smoke run" >&2; exit 1; }
  fi
fi
step "all tests passed"
