#!/bin/sh
# Run by scripts/build-guest-image inside the image (a chroot with a private /tmp) after the languages'
# packages are in place: precompiles the headers C++ solutions start with, <iostream> and
# <bits/stdc++.h>, into a folder the cpp recipe puts first on the include path.
#
# Why: under TCG g++ spent most of a hello world's ~5.5 s parsing <iostream>. GCC looks for
# <name>.gch in each include directory just before <name>, and uses it only when it is valid for the
# compile: the same compiler and flags, and the header the first thing the file includes. In any
# other case it includes the header from the system as before (same diagnostics, only slower). The
# flags here are the recipe's (guest/languages.json; RegistryTests holds the two to each other).
set -eu
pch=/usr/lib/codebench/cpp/pch
cd /tmp
for header in iostream bits/stdc++.h; do
    # Where g++ finds the header (`-H` prints each header it opens, the first one first).
    path=$(echo "#include <$header>" | g++ -O2 -std=c++17 -H -fsyntax-only -x c++ - 2>&1 | sed -n '1s/^\. //p')
    [ -f "$path" ] || { echo "cpp.sh: g++ does not find <$header>" >&2; exit 1; }
    mkdir -p "$(dirname "$pch/$header")"
    # A header compiled on its own says `#pragma GCC system_header` outside an include: GCC notes that.
    g++ -O2 -std=c++17 -x c++-header "$path" -o "$pch/$header.gch.partial" 2>&1 | grep -v -e 'system_header' -e '^ *[0-9]* | ' -e '^ *| ' >&2 || true
    [ -s "$pch/$header.gch.partial" ] || { echo "cpp.sh: g++ wrote no precompiled <$header>" >&2; exit 1; }
    chmod 0444 "$pch/$header.gch.partial"
    mv "$pch/$header.gch.partial" "$pch/$header.gch"
done
