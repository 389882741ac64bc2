# Shared by the fuzz scripts (source it; it defines functions only): the pinned cargo-fuzz,
# installed if missing, and one build of the targets on the current toolchain.

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
