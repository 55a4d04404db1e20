#!/bin/sh
# Starts the compiled server (`npm start` runs this after the build check). `exec` all the
# way down: the node process takes this shell's place, so the signals sent to `npm start`
# reach the server itself (docs/operations/running.md).
#
# On the embedded database two memory settings are given here because they are read only
# when a process starts (docs/decisions/027-embedded-memory.md): at most two C allocator
# arenas, and a young generation of at most 2 × 4 MiB. Either set by the operator wins.
# On PostgreSQL neither is given: there they cost CPU per request and the server's memory
# is well under the goal without them.
if [ -z "${DATABASE_URL:-}" ]; then
  export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
  case " ${NODE_OPTIONS:-} $* " in
    *--max-semi-space-size*) ;;
    *) set -- --max-semi-space-size=4 "$@" ;;
  esac
fi
exec "${NODE:-node}" "$@" "$(dirname "$0")/../dist/src/server.js"
