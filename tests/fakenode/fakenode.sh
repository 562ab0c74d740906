# shellcheck shell=sh
# Fake aleph-node: writes an aleph-node-shaped log to stderr, runs under busybox sh
# as PID 1 in a FROM-scratch image (see Dockerfile). Not a node: just its log.
#
# Parameters (environment at `docker run -e K=V`, overridden per key by the lines
# KEY=VALUE of /ctl/params, which is re-read every tick; a key removed from the file
# falls back to its environment value, then to the default below):
#   START=1000       best block at first start (ignored when /ctl/best holds a number)
#   STEP=1           blocks imported per tick; 0 = stalled (no Imported lines)
#   TICK=1           seconds between ticks, fractions allowed (0.2); must be > 0
#   PEERS=10         peer count in the "Network status report" lines
#   MAJOR_SYNC=0     0/1; a change prints Switched to / No longer in major sync state
#   PRODUCE=0        1 = every 8th imported block is "prepared" and "pre-sealed" here
#   QUIET=0          1 = print nothing at all (the node still runs and advances)
#   EXIT=            a number: exit with that code at the next tick (stays in effect
#                    after a restart until removed)
#   IGNORE_TERM=0    1 = ignore SIGTERM/SIGINT like the official image (docker stop
#                    then waits its timeout and SIGKILLs); 0 = exit 0 at once
#   STATUS_EVERY=20  seconds between network/sync status reports; 0 = never
# The best block is saved to /ctl/best every tick it changes (atomically), so a
# restarted container goes on from there; without a writable /ctl it starts from
# START on every run. Diagnostics about bad parameters go to stdout, the log to stderr.

MAX_LINES=1000 # at most this many Imported lines per tick (the last ones)
CR=$(printf '\r')
KEYS='START STEP TICK PEERS MAJOR_SYNC PRODUCE QUIET EXIT IGNORE_TERM STATUS_EVERY'

# Environment values, captured once; the effective values are recomputed every tick.
for k in $KEYS; do
    eval "ENV_$k=\${$k-}"
done

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
is_bool() { case $1 in 0 | 1) return 0 ;; esac; return 1; }
is_secs() {
    case $1 in '' | . | *[!0-9.]* | *.*.*) return 1 ;; esac
    case $1 in *[1-9]*) return 0 ;; esac
    return 1
}

# pick KEY DEFAULT CHECK: effective value of KEY, the first valid one of /ctl/params,
# the environment and DEFAULT (an empty value counts as unset).
pick() {
    eval "_f=\${FILE_$1-} _e=\$ENV_$1"
    for _v in "$_f" "$_e" "$2"; do
        [ -z "$_v" ] && continue
        if [ "$_v" = "$2" ] || $3 "$_v"; then break; fi
        BAD="$BAD $1=$_v"
    done
    eval "$1=\$_v"
}

load_params() {
    for k in $KEYS; do unset "FILE_$k"; done
    if [ -r /ctl/params ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line=${line%"$CR"}
            case $line in [A-Z]*=*) ;; *) continue ;; esac
            key=${line%%=*}
            case " $KEYS " in *" $key "*) eval "FILE_$key=\${line#*=}" ;; esac
        done </ctl/params
    fi
    BAD=
    pick START 1000 is_uint
    pick STEP 1 is_uint
    pick TICK 1 is_secs
    pick PEERS 10 is_uint
    pick MAJOR_SYNC 0 is_bool
    pick PRODUCE 0 is_bool
    pick QUIET 0 is_bool
    pick EXIT '' is_uint
    pick IGNORE_TERM 0 is_bool
    pick STATUS_EVERY 20 is_uint
    if [ "$BAD" != "$LAST_BAD" ]; then
        [ -n "$BAD" ] && echo "fakenode: invalid parameter(s), using defaults:$BAD"
        LAST_BAD=$BAD
    fi
}

# TS = node timestamp "YYYY-MM-DD HH:MM:SS.mmm", NOW = epoch seconds. busybox `date`
# has no %N, but its `ts` applet has %.S (microseconds); computed once per tick.
stamp() {
    # shellcheck disable=SC2046
    set -- $(echo | ts '%s %Y-%m-%d %H:%M:%.S')
    NOW=$1
    case $3 in
        *.*) TS="$2 ${3%???}" ;;
        *) TS="$2 $3.000" ;;
    esac
}

# H = a 32-bit mix of $1 (deterministic fake hashes, same block => same hash).
h32() {
    H=$((($1 ^ ($1 >> 16)) * 73244475 & 0xffffffff))
    H=$(((H ^ (H >> 16)) * 73244475 & 0xffffffff))
    H=$((H ^ (H >> 16)))
}
# Short hash parts of block $1: 0x<SA>…<SB> is the short form of its full hash.
short() {
    h32 $(($1 * 8))
    SA=$((H >> 16))
    h32 $(($1 * 8 + 7))
    SB=$((H & 0xffff))
}
# W = the 8 32-bit words (decimal, space separated) of block $1's full hash; print
# them with $HEX. Salt $2 gives unrelated hashes. No command substitution: no fork.
HEX='0x%08x%08x%08x%08x%08x%08x%08x%08x'
words() {
    W=
    for _i in 0 1 2 3 4 5 6 7; do
        h32 $(($1 * 8 + _i + ${2:-0}))
        W="$W $H"
    done
}

# log THREAD TARGET MESSAGE: one line in aleph-node's docker format, to stderr.
log() {
    [ "$QUIET" = 1 ] && return 0
    printf '%s  INFO %20s %s: %s    \n' "$TS" "$1" "$2" "$3" >&2
}

imported() {
    [ "$QUIET" = 1 ] && return 0
    short "$1"
    printf '%s  INFO tokio-runtime-worker substrate: ✨ Imported #%d (0x%04x…%04x)    \n' \
        "$TS" "$1" "$SA" "$SB" >&2
}

produced() {
    [ "$QUIET" = 1 ] && return 0
    words $(($1 - 1))
    parent=$W
    words "$1" 1000003
    sealing=$W
    words "$1" 2000003
    xt=$W
    words "$1"
    # shellcheck disable=SC2086  # each $W is 8 arguments
    printf "%s  INFO tokio-runtime-worker sc_basic_authorship::basic_authorship: 🎁 Prepared block for proposing at %d (3 ms) [hash: $HEX; parent_hash: $HEX; extrinsics (1): [$HEX]]    \n" \
        "$TS" "$1" $sealing $parent $xt >&2
    # shellcheck disable=SC2086
    printf "%s  INFO tokio-runtime-worker aura: 🔖 Pre-sealed block for proposal at %d. Hash now $HEX, previously $HEX.    \n" \
        "$TS" "$1" $W $sealing >&2
}

status_report() {
    [ "$QUIET" = 1 ] && return 0
    log tokio-runtime-worker aleph-network \
        "Network status report: /0x7025…344e/sync/0 connected peers - $PEERS; "
    log tokio-runtime-worker aleph-network \
        "Network status report: /0x7025…344e/auth/0 connected peers - $PEERS; "
    fin=$((N > 2 ? N - 2 : 0))
    short "$N"
    a=$SA b=$SB
    short "$fin"
    printf '%s  INFO tokio-runtime-worker aleph-block-sync: Imported: #%d (0x%04x…%04x), finalized: #%d (0x%04x…%04x), favourite: #%d (0x%04x…%04x).    \n' \
        "$TS" "$N" "$a" "$b" "$fin" "$SA" "$SB" "$N" "$a" "$b" >&2
}

persist() {
    [ "$PERSIST" = 1 ] && [ "$N" != "$SAVED" ] || return 0
    if printf '%d\n' "$N" >/ctl/best.tmp 2>/dev/null && mv -f /ctl/best.tmp /ctl/best 2>/dev/null; then
        SAVED=$N
    else
        PERSIST=0
        echo "fakenode: cannot write /ctl/best; the best block is not persisted"
    fi
}

# SIGTERM/SIGINT: exit 0 at once while sleeping between ticks; during a tick, finish
# it first (so /ctl/best matches the last Imported line), then exit.
SLEEP_PID=
STOP=0
on_term() {
    STOP=1
    if [ -n "$SLEEP_PID" ]; then
        kill "$SLEEP_PID" 2>/dev/null
        exit 0
    fi
}
TRAP_STATE=
apply_trap() {
    [ "$IGNORE_TERM" = "$TRAP_STATE" ] && return 0
    if [ "$IGNORE_TERM" = 1 ]; then trap '' TERM INT; else trap on_term TERM INT; fi
    TRAP_STATE=$IGNORE_TERM
}

# ---- start -----------------------------------------------------------------------
load_params
apply_trap
PERSIST=0
SAVED=
if [ -d /ctl ] && [ -w /ctl ]; then PERSIST=1; fi
N=$START
if [ -r /ctl/best ]; then
    read -r saved </ctl/best
    if is_uint "$saved"; then N=$saved SAVED=$saved; fi
fi
stamp
role=FULL
[ "$PRODUCE" = 1 ] && role=AUTHORITY
log main sc_cli::runner "Aleph Node"
log main sc_cli::runner "✌️  version 15.1.0-f2a00c1dbd3"
log main sc_cli::runner "❤️  by Cardinal Cryptography, 2019-2025"
log main sc_cli::runner "📋 Chain specification: Aleph Zero"
log main sc_cli::runner "👤 Role: $role"
log main sc_service::builder "📦 Highest known block at #$N"
log tokio-runtime-worker aleph-block-sync "Switched to major sync state."
SYNC_STATE=1
SESSION=$((N / 900))
log tokio-runtime-worker aleph-party "Running session $SESSION."
LAST_STATUS=$NOW
persist

# ---- one tick per TICK seconds -----------------------------------------------------
while :; do
    sleep "$TICK" &
    SLEEP_PID=$!
    [ "$STOP" = 1 ] && on_term
    wait "$SLEEP_PID"
    SLEEP_PID=
    load_params
    [ -n "$EXIT" ] && exit "$EXIT"
    apply_trap
    stamp
    if [ "$MAJOR_SYNC" != "$SYNC_STATE" ]; then
        if [ "$MAJOR_SYNC" = 1 ]; then
            log tokio-runtime-worker aleph-block-sync "Switched to major sync state."
        else
            log tokio-runtime-worker aleph-block-sync "No longer in major sync state."
        fi
        SYNC_STATE=$MAJOR_SYNC
    fi
    if [ "$STEP" -gt 0 ]; then
        b=$((N + 1))
        N=$((N + STEP))
        [ $((N - b + 1)) -gt "$MAX_LINES" ] && b=$((N - MAX_LINES + 1))
        while [ "$b" -le "$N" ]; do
            [ "$PRODUCE" = 1 ] && [ $((b % 8)) -eq 0 ] && produced "$b"
            imported "$b"
            if [ $((b % 900)) -eq 0 ]; then
                SESSION=$((b / 900))
                log tokio-runtime-worker aleph-party "Running session $SESSION."
            fi
            b=$((b + 1))
        done
        if [ $((N / 900)) -ne "$SESSION" ]; then
            SESSION=$((N / 900))
            log tokio-runtime-worker aleph-party "Running session $SESSION."
        fi
    fi
    if [ "$STATUS_EVERY" -gt 0 ] && [ $((NOW - LAST_STATUS)) -ge "$STATUS_EVERY" ]; then
        status_report
        LAST_STATUS=$NOW
    fi
    persist
done
