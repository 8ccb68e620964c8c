# shellcheck shell=bash
# Shared by scripts/demo and scripts/test (sourced, not run): everything a fresh Debian 12
# machine needs before cai can run, each step skipped when already done, so re-runs are cheap.
#   1. apt packages (the engine, debootstrap for the offline base image, OpenSSH, git, ip, iptables)
#   2. the Python env .venv with cai and its test dependencies
#   3. `cai setup`: the dedicated Docker engine (idempotent: says "nothing to change")
#   4. `cai image build --layer base`

APT_PACKAGES=(docker.io debootstrap openssh-client openssh-server git iproute2 iptables
              ca-certificates)

log() { printf '\n== %s\n' "$*"; }

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            # we are in the repository root by now (the scripts cd there first)
            exec sudo --preserve-env=CI,CAI_REQUIRE_ENGINE "$PWD/scripts/$(basename "$0")" "$@"
        fi
        echo "$0: run as root (it installs packages and starts cai's Docker engine)" >&2
        exit 1
    fi
}

install_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "apt packages: all present"
        return
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${missing[@]}"
}

make_venv() {
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        log "apt-get install python3-venv"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    fi
    if [ ! -x .venv/bin/python ]; then
        log "python3 -m venv .venv"
        python3 -m venv .venv
    fi
    log "pip install -e '.[test]'"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
}

setup_engine() {
    log "cai setup"
    .venv/bin/cai setup
}

build_base_image() {
    if ! .venv/bin/cai image build --help >/dev/null 2>&1; then
        log "SKIPPED: cai image build is not available in this checkout yet"
        return
    fi
    log "cai image build --layer base"
    .venv/bin/cai image build --layer base
}

prepare() {
    require_root "$@"
    install_packages
    make_venv
    setup_engine
    build_base_image
}
