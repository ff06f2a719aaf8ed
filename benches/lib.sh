# Helpers shared by benches/run.sh and benches/rtsp_bench.sh (sourced, not run).
# shellcheck shell=bash

# Median of whitespace-separated numbers on stdin.
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# calc FORMAT EXPR: awk arithmetic, printed with FORMAT.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# KiB -> MiB, one decimal.
mib() { calc '%.1f' "$1 / 1024"; }
# verdict EXPR: "**met**" when the awk expression is true.
verdict() { if awk "BEGIN { exit !($1) }"; then echo "**met**"; else echo "**not met**"; fi; }
# "<250us" as a code span, not an HTML tag.
lt() { echo "\`$1\`"; }

# find_descendant PID COMM: the first descendant of PID whose command name is COMM.
find_descendant() {
    local queue=("$1") p c
    while [ "${#queue[@]}" -gt 0 ]; do
        p=${queue[0]}
        queue=("${queue[@]:1}")
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            if [ "$(cat /proc/"$c"/comm 2>/dev/null)" = "$2" ]; then
                echo "$c"
                return 0
            fi
            queue+=("$c")
        done
    done
    return 1
}
