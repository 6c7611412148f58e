#!/bin/bash
# Runs each cmocka test binary given; prints one line per binary and a summary.
set -u
fail=0; n=0
for t in "$@"; do
    n=$((n + 1))
    out=$("$t" 2>&1); rc=$?
    if [ $rc -eq 0 ]; then
        printf 'ok      %s (%s)\n' "${t##*/tests/unit/}" "$(grep -c '^\[       OK \]' <<<"$out") cases"
    else
        fail=$((fail + 1))
        printf 'FAIL    %s (exit %d)\n' "${t##*/tests/unit/}" "$rc"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
done
echo "unit: $((n - fail))/$n test programs passed"
[ $fail -eq 0 ]
