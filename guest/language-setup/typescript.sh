#!/bin/sh
# Run by scripts/build-guest-image inside the image (a chroot with a private /tmp) after the languages'
# packages and /usr/lib/codebench/languages.json are in place: saves tsc as V8 startup snapshots, the
# blobs the typescript recipe's compile command (tsc, next to this file) starts from
# (typescript-snapshot.js says why and how). $CODEBENCH_TCG_EMULATOR, when set, is QEMU's user-mode
# x86_64 emulator copied into /tmp: the second blob is made under it, for guests QEMU runs under TCG.
set -eu
library=/usr/share/nodejs/typescript/lib
directory=/usr/lib/codebench/typescript
last='ts.executeCommandLine(ts.sys, ts.noop, ts.sys.args);'
# The snapshot replaces tsc.js's last statement; another tsc.js is not one this was written for.
[ "$(tail -n 1 "$library/tsc.js")" = "$last" ] || { echo "typescript.sh: $library/tsc.js does not end with: $last" >&2; exit 1; }
entry=$(mktemp /tmp/tsc-snapshot.XXXXXX.js)
{
    # tsc finds its default library next to the file it runs from.
    echo "var __filename = \"$library/tsc.js\", __dirname = \"$library\";"
    sed '$d' "$library/tsc.js"
    cat /usr/lib/codebench/language-setup/typescript-snapshot.js
} > "$entry"
mkdir -p "$directory"
install -m 0755 /usr/lib/codebench/language-setup/tsc "$directory/tsc"

# build <blob> [emulator...]: through the recipe's own command, so that the blob is made with the
# V8 flags it is loaded with.
build() {
    blob=$1
    shift
    log=$(mktemp /tmp/tsc-snapshot.XXXXXX.log)
    status=0
    "$directory/tsc" --build-snapshot "$entry" "$blob.partial" "$@" >"$log" 2>&1 || status=$?
    # node notes that it leaves Error.stackTraceLimit out of every snapshot; anything else is worth seeing.
    grep -v '^Deleting Error.stackTraceLimit' "$log" >&2 || true
    rm -f "$log"
    [ "$status" = 0 ] && [ -s "$blob.partial" ] || { echo "typescript.sh: node --build-snapshot failed for $blob (status $status)" >&2; exit 1; }
    chmod 0444 "$blob.partial"
    mv "$blob.partial" "$blob"
}

build "$directory/tsc.blob"
if [ -n "${CODEBENCH_TCG_EMULATOR:-}" ]; then
    build "$directory/tsc-tcg.blob" "$CODEBENCH_TCG_EMULATOR" -cpu max,-xsave
else
    echo "typescript.sh: no TCG emulator (qemu-user-static): guests under TCG compile with plain tsc" >&2
fi
rm -f "$entry"
