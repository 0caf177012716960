#!/usr/bin/env bash
# Installs everything simkit needs on a fresh Debian machine, idempotently and without prompts:
# Debian packages, the Rust components, cargo and Maven dependencies, and the fuzzing toolchain.
# Safe to run again; each step skips what is already there. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages. pkg-config and a C toolchain build libFuzzer; a JDK and Maven build the applets
# and the jCardSim card host. pcscd, vsmartcard-vpcd and libpcsclite-dev give the genuine PC/SC
# path (pcscd -> vpcd -> card host) and pcsc-tools the independent `scriptor` client; PostgreSQL is
# the scale-out store of the grant signer (tests start throwaway clusters on loopback, never the
# system service); SoftHSM2 and OpenSC's pkcs11-tool are the PKCS#11 token the signer's key tests use.
APT_PACKAGES=(build-essential pkg-config ca-certificates curl git python3
  pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev
  postgresql postgresql-contrib softhsm2 opensc)
# A JDK 17 and Maven already on PATH (e.g. a Temurin install) are good enough.
javac -version 2>&1 | grep -q ' 17' || APT_PACKAGES+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || APT_PACKAGES+=(maven)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Rust: the workspace pins nothing beyond stable; rustfmt and clippy are needed by the tests.
if ! command -v cargo >/dev/null; then
  log "cargo not found: install Rust with rustup (https://rustup.rs) and run this again"
  exit 1
fi
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
log "fetching cargo dependencies"
cargo fetch --locked -q 2>/dev/null || cargo fetch -q

# Maven dependencies for the applets and the card host (jCardSim, ASM, JUnit) — once the Maven
# build exists.
if [ -f applets/pom.xml ]; then
  log "fetching Maven dependencies"
  mvn -B -q -f applets/pom.xml dependency:go-offline >/dev/null
  # The card host jar is what `--card jcardsim` starts; build it now so the README's first
  # command works without a separate Maven step.
  log "building the card host"
  mvn -B -q -f applets/pom.xml package -DskipTests >/dev/null
fi

# Fuzzing: cargo-fuzz needs a nightly toolchain (libFuzzer's sanitizer flags). Skipped with
# SIMKIT_NO_FUZZ=1; tools/test.sh then skips the fuzz smoke run and says so.
if [ "${SIMKIT_NO_FUZZ:-0}" != "1" ] && [ -d host/core/fuzz ]; then
  if command -v rustup >/dev/null; then
    rustup toolchain list | grep -q '^nightly' || {
      log "installing the nightly toolchain for cargo-fuzz"
      rustup toolchain install nightly --profile minimal
    }
  fi
  command -v cargo-fuzz >/dev/null || {
    log "installing cargo-fuzz"
    cargo install --locked -q cargo-fuzz
  }
fi
log "done"
