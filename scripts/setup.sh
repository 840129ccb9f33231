#!/usr/bin/env bash
# Installs what building scf-ledger needs on a Debian machine, and nothing when it is already
# there. Sourced by scripts/main.sh, scripts/test.sh and .ci/run; safe to run on its own.
set -euo pipefail

# Debian packages: a C/C++ toolchain for the crates that build C and C++ (secp256k1; RocksDB with
# `--features rocksdb`), libclang for the bindgen that generates RocksDB's Rust bindings, and
# Chromium for the web explorer's browser tests (tests/tests/explorer.rs drives it headless),
# python3-venv and curl for the OpenAPI check (scripts/schemathesis.sh: Schemathesis from PyPI
# in a virtual environment).
apt_packages=(build-essential pkg-config clang libclang-dev chromium python3-venv curl)
# A caller may add packages of its own, space-separated: .ci/run adds `systemd`, whose
# systemd-analyze checks deploy/scf-node.service (scripts/check-deploy.sh).
read -r -a extra_packages <<<"${SCF_EXTRA_APT_PACKAGES:-}"
apt_packages+=("${extra_packages[@]}")

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust: the workspace uses edition 2024, so cargo 1.85 or newer. Debian's own cargo is older;
# rustup's is used when present.
if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "setup: cargo is not installed. Install Rust 1.85 or newer with rustup (https://rustup.rs)," >&2
  echo "       then run this command again." >&2
  exit 1
fi
cargo_minor=$(cargo --version | sed -E 's/^cargo 1\.([0-9]+).*/\1/')
if [[ ! "$cargo_minor" =~ ^[0-9]+$ ]] || ((cargo_minor < 85)); then
  echo "setup: $(cargo --version) is too old; scf-ledger needs Rust 1.85 or newer (rustup update)." >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
