#!/usr/bin/env bash
# Builds secrets-env as a static executable (Cargo profile `static`: size first) and prints its
# path; the options are scripts/build-static.sh's (--target TRIPLE).
exec "$(dirname "$0")/build-static.sh" --profile static "$@" secrets-env
