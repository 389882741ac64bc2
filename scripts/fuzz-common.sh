# Shared by the fuzz scripts (source it; it defines functions only): the pinned cargo-fuzz,
# installed if missing, one build of the targets on the current toolchain, and the common start
# of a run over targets (fuzz_prepare).

FUZZ_CARGO_FUZZ_VERSION=0.13.2

# Installs the pinned cargo-fuzz unless that version is already on PATH.
fuzz_ensure_cargo_fuzz() {
    if ! cargo fuzz --version 2>/dev/null | grep -q "$FUZZ_CARGO_FUZZ_VERSION"; then
        echo "installing cargo-fuzz $FUZZ_CARGO_FUZZ_VERSION"
        cargo install cargo-fuzz --locked --version "$FUZZ_CARGO_FUZZ_VERSION"
    fi
}

# fuzz_build SANITIZER [TARGET]: builds every target (or one) from the fuzz/ directory and says
# how long it took. An up-to-date build (e.g. after scripts/fuzz-smoke.sh) takes seconds.
fuzz_build() {
    local sanitizer=$1
    shift
    local start=$SECONDS
    echo "building ${1:-all} fuzz target(s) (sanitizer: $sanitizer)"
    cargo fuzz build -s "$sanitizer" "$@"
    echo "build took $((SECONDS - start)) s"
}

# fuzz_prepare ROOT SANITIZER [TARGET...]: installs cargo-fuzz if needed, enters ROOT/fuzz, sets
# the array `targets` to the given targets (default: every target of `cargo fuzz list`) and
# builds them all.
fuzz_prepare() {
    local root=$1 sanitizer=$2
    shift 2
    fuzz_ensure_cargo_fuzz
    cd "$root/fuzz"
    if [ "$#" -gt 0 ]; then
        targets=("$@")
    else
        mapfile -t targets < <(cargo fuzz list)
    fi
    fuzz_build "$sanitizer"
}
