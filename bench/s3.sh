#!/usr/bin/env bash
# W&B run folder -> Parquet archive in S3 (parquet:s3://, issue 15) against
# a real S3-compatible server on 127.0.0.1 (versitygw over a POSIX folder, the
# server the tests use), side by side in one job with the same copy into a
# local folder and with pyarrow writing the same Parquet files through its S3
# filesystem. Run by `make bench` and alone by `make bench-s3`. Prints a
# Markdown table and writes it to $SCRATCH/s3/results.md (docs/BENCHMARKS.md
# records a run).
#
#   local: `runferry copy wandb:DIR parquet:LOCAL --no-state -q`
#   s3:    `runferry copy wandb:DIR parquet:s3://BUCKET/a?endpoint=...&path-style=true --no-state -q`
#          Target: within 1.5x of local.
#   pyarrow: bench/py/s3_write.py uploads every Parquet file of the local
#          archive with pyarrow.fs.S3FileSystem + pq.write_table (zstd 1);
#          only encoding + upload of tables already in memory is timed.
#          Target: runferry's whole copy (decoding W&B included) at least as fast.
#          pyarrow's defaults differ from runferry's settings (every column
#          dictionary-encoded, 1 MiB pages, no page index), so it also writes
#          them a second time with --aligned: each file with the encodings,
#          row groups, page size and page index runferry's file has.
#          Also the whole Python pipeline of the e2e-parquet benchmark
#          (bench/py/wandb_to_parquet.py) writing its one file to S3, once.
#   memory: the s3 copy of a run ten times as large; peak RSS should stay flat.
#   restore: `runferry copy parquet:s3://... parquet:LOCAL --no-state -q`, the
#          whole archive read back from the server (every object streamed once
#          while its SHA-256 is checked, spilled to a local file past 4 MiB),
#          of the small run and of the one ten times as large; peak RSS should
#          stay flat. Also `runferry ls parquet:s3://...` of the large one.
#
# Every copy to S3 is checked against the local archive (`runferry check`).
# versitygw: $RUNFERRY_VERSITYGW, PATH, $(go env GOPATH)/bin, or built once
# into the user cache folder like internal/testenv does. Knobs:
# RUNFERRY_BENCH_DIR, RUNFERRY_VENV, BENCH_S3_ROWS (100000 rows of 20 keys),
# BENCH_S3_MEM_ROWS (1000000), BENCH_REPEAT (3; medians), BENCH_S3_SKIP_PANDAS (set: skip
# the slow pandas pipeline), BENCH_S3_OLD (the path of another runferry binary,
# say one built from main: its local and S3 copies of the same run are timed
# too, interleaved with this tree's, each repetition, for a side-by-side row;
# an s3archive next to it, built from the same commit, is timed like for like
# too).
# CPU time (user + system) is reported next to wall time: on a loaded machine
# it is the steadier number.
#
#   like for like: bench/s3archive reads the run into memory first
#          (untimed, as pyarrow's side is given its tables), then times
#          runferry's archive writer (engine, sort, encode, upload, commit)
#          copying it from memory to the server; its archive is checked
#          against the local one (`runferry check`) and its tables against
#          pyarrow's files (bench/py/s3_compare.py: same rows, every table, but
#          the runs' fingerprint, which names the source read).
#          Target: no slower than pyarrow's encode + upload.
#
#   upload alone: the local archive's Parquet files (the ones pyarrow writes
#          above) uploaded as they are, by bench/s3upload through runferry's
#          archive.Store (straight to each key; four at once; through .staging/
#          and a move as the archive commits a data file) and by
#          bench/py/s3_write.py --raw through pyarrow's S3 filesystem.
#          Target: runferry's upload no slower than pyarrow's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
SCRATCH=${RUNFERRY_BENCH_DIR:-${TMPDIR:-/tmp}/runferry-bench}/s3
VENV=${RUNFERRY_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
ROWS=${BENCH_S3_ROWS:-100000}
MEM_ROWS=${BENCH_S3_MEM_ROWS:-1000000}
REPEAT=${BENCH_REPEAT:-3}
BIN=$SCRATCH/bin
TIME=/usr/bin/time
log() { echo "bench-s3: $*" >&2; }
die() { log "$*"; exit 1; }
"$TIME" -f '%M' true >/dev/null 2>&1 || die "GNU time is missing: install the 'time' package"
"$PY" -c 'import pyarrow.fs' 2>/dev/null || die "$VENV lacks pyarrow: run 'make venv'"
mkdir -p "$SCRATCH"
CGO_ENABLED=0 go build -o "$BIN/" ./cmd/runferry ./bench/genwandb ./bench/s3upload ./bench/s3archive
RF=$BIN/runferry

# versitygw, found like internal/testenv/s3.go finds it.
VGW_MODULE=$(sed -n 's/^const VersityGWModule = "\(.*\)"$/\1/p' internal/testenv/s3.go)
VGW_CACHE=$("$PY" -c 'import os; print(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"))')/runferry-test/versitygw-${VGW_MODULE##*@}
VGW=${RUNFERRY_VERSITYGW:-}
if [ -z "$VGW" ] || [ ! -x "$VGW" ]; then
	VGW=$(PATH=$PATH:$(go env GOPATH)/bin:$VGW_CACHE command -v versitygw || true)
fi
if [ -z "$VGW" ]; then
	log "building $VGW_MODULE into $VGW_CACHE"
	GOBIN=$VGW_CACHE GOFLAGS=-mod=mod go install "$VGW_MODULE"
	VGW=$VGW_CACHE/versitygw
fi

# Inputs: one run each, reused while the stamp matches.
gen() { # DIR ROWS
	local dir=$1 rows=$2 stamp
	stamp="-rows $rows -keys 20 -stats-every 100 $(sha256sum bench/genwandb/main.go internal/wandbfile/*.go | sha256sum | cut -c1-16)"
	if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$stamp" ]; then return; fi
	log "generating $dir ($rows rows x 20 keys)"
	rm -rf "$dir"
	"$BIN/genwandb" -out "$dir" -rows "$rows" -keys 20 -stats-every 100 >/dev/null
	echo "$stamp" >"$dir/stamp"
}
W=$SCRATCH/wandb-$ROWS
WM=$SCRATCH/wandb-$MEM_ROWS
gen "$W" "$ROWS"
gen "$WM" "$MEM_ROWS"

# The server, in its own process group, killed on exit.
SRV=$SCRATCH/server
rm -rf "$SRV"
mkdir -p "$SRV/data" "$SRV/iam"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=runferrybench AWS_SECRET_ACCESS_KEY=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PROFILE=
export AWS_CONFIG_FILE=$SRV/no-config AWS_SHARED_CREDENTIALS_FILE=$SRV/no-credentials
ROOT_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID ROOT_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
	setsid "$VGW" --port "127.0.0.1:$PORT" --region us-east-1 --iam-dir "$SRV/iam" posix "$SRV/data" >"$SRV.log" 2>&1 &
SERVER=$!
disown "$SERVER"
trap 'kill -KILL -- -"$SERVER" 2>/dev/null || true; rm -rf "$SRV"' EXIT
ENDPOINT=http://127.0.0.1:$PORT
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { tail -20 "$SRV.log" >&2; die "versitygw did not start"; }
# Buckets are folders of the posix backend.
mkbucket() { "$PY" -c 'import os,pyarrow.fs as f; f.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], region="us-east-1", endpoint_override=os.environ["E"].split("://")[1], scheme="http", allow_bucket_creation=True).create_dir(os.environ["B"])'; }
loc() { echo "s3://$1/a?endpoint=$ENDPOINT&path-style=true"; }

# timed CMD...: wall seconds, peak RSS (MB) and CPU seconds (user + system)
# of CMD.
timed() {
	local tf=$SCRATCH/time.txt
	"$TIME" -f '%e %M %U %S' -o "$tf" "$@" >"$SCRATCH/last.out" 2>&1 || { cat "$SCRATCH/last.out" >&2; die "failed: $*"; }
	local w k u s
	read -r w k u s <"$tf"
	echo "$w $((k / 1024)) $(echo "$u + $s" | bc)"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { echo "scale=2; $1 / $2" | bc; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
lw=() lr=() sw=() sr=() pw=() pr=() pt=() qw=() qr=() u1=() us=() u4=() ur=() rw=() rr=()
lc=() sc=() ow=() orr=() oc=() xw=() xr=() xc=() kw=() kr=() kc=() kt=() kk=()
pc=() at=() ac=() ar=() yt=() yk=()
OLD=${BENCH_S3_OLD:-}
for rep in $(seq "$REPEAT"); do
	if [ -n "$OLD" ]; then
		rm -rf "$SCRATCH/old-local"
		read -r w r c < <(timed "$OLD" copy "wandb:$W/wandb" "parquet:$SCRATCH/old-local" --no-state -q)
		ow+=("$w") orr+=("$r") oc+=("$c")
		rm -rf "$SCRATCH/old-local"
	fi
	rm -rf "$SCRATCH/local"
	read -r w r c < <(timed "$RF" copy "wandb:$W/wandb" "parquet:$SCRATCH/local" --no-state -q)
	lw+=("$w") lr+=("$r") lc+=("$c")
	if [ -n "$OLD" ]; then
		X=old$rep-$RANDOM
		E=$ENDPOINT B=$X mkbucket
		read -r w r c < <(timed "$OLD" copy "wandb:$W/wandb" "parquet:$(loc "$X")" --no-state -q)
		xw+=("$w") xr+=("$r") xc+=("$c")
		"$RF" check "parquet:$SCRATCH/local" "parquet:$(loc "$X")" >"$SCRATCH/check.out" 2>&1 || { cat "$SCRATCH/check.out" >&2; die "the old binary's S3 archive differs from the local one"; }
		rm -rf "$SRV/data/$X"
	fi
	B=rf$rep-$RANDOM
	E=$ENDPOINT B=$B mkbucket
	read -r w r c < <(timed "$RF" copy "wandb:$W/wandb" "parquet:$(loc "$B")" --no-state -q)
	sw+=("$w") sr+=("$r") sc+=("$c")
	"$RF" check "parquet:$SCRATCH/local" "parquet:$(loc "$B")" >"$SCRATCH/check.out" 2>&1 || { cat "$SCRATCH/check.out" >&2; die "the S3 archive differs from the local one"; }
	# Restore: the whole S3 archive read back into a local one.
	rm -rf "$SCRATCH/restored"
	read -r w r _ < <(timed "$RF" copy "parquet:$(loc "$B")" "parquet:$SCRATCH/restored" --no-state -q)
	rw+=("$w") rr+=("$r")
	"$RF" check "parquet:$(loc "$B")" "parquet:$SCRATCH/restored" >"$SCRATCH/check.out" 2>&1 || { cat "$SCRATCH/check.out" >&2; die "the restored archive differs from the S3 one"; }
	rm -rf "$SCRATCH/restored"
	P=py$rep-$RANDOM
	E=$ENDPOINT B=$P mkbucket
	read -r w r _ < <(timed "$PY" bench/py/s3_write.py "$SCRATCH/local" "$ENDPOINT" "$P" a)
	pw+=("$w") pr+=("$r") pt+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$SCRATCH/last.out")")
	pc+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_seconds"])' "$SCRATCH/last.out")")
	# pyarrow with runferry's settings, same files, into the same bucket.
	read -r w r _ < <(timed "$PY" bench/py/s3_write.py --aligned "$SCRATCH/local" "$ENDPOINT" "$P" al)
	ar+=("$r")
	at+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$SCRATCH/last.out")")
	ac+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_seconds"])' "$SCRATCH/last.out")")
	# Like for like: runferry's writer from memory into the same bucket,
	# checked against the local archive and against pyarrow's files.
	read -r w r c < <(timed "$BIN/s3archive" -src "wandb:$W/wandb" -to "parquet:$(loc "$P" | sed 's#/a?#/mem?#')")
	kw+=("$w") kr+=("$r") kc+=("$c")
	kt+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$SCRATCH/last.out")")
	kk+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cpu_seconds"])' "$SCRATCH/last.out")")
	"$RF" check "parquet:$SCRATCH/local" "parquet:$(loc "$P" | sed 's#/a?#/mem?#')" >"$SCRATCH/check.out" 2>&1 || { cat "$SCRATCH/check.out" >&2; die "the archive written from memory differs from the local one"; }
	if [ -n "$OLD" ] && [ -x "$(dirname "$OLD")/s3archive" ]; then
		timed "$(dirname "$OLD")/s3archive" -src "wandb:$W/wandb" -to "parquet:$(loc "$P" | sed 's#/a?#/memold?#')" >/dev/null
		yt+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$SCRATCH/last.out")")
		yk+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("cpu_seconds", ""))' "$SCRATCH/last.out")")
		"$RF" check "parquet:$SCRATCH/local" "parquet:$(loc "$P" | sed 's#/a?#/memold?#')" >"$SCRATCH/check.out" 2>&1 || { cat "$SCRATCH/check.out" >&2; die "the old writer's archive differs from the local one"; }
	fi
	"$PY" bench/py/s3_compare.py --ignore runs.fingerprint "$ENDPOINT" "$P" a mem >"$SCRATCH/compare.out" 2>&1 || { cat "$SCRATCH/compare.out" >&2; die "runferry's archive written from memory and pyarrow's files differ"; }
	# Upload alone, same files, same server: runferry's Store (straight to
	# the key, one at a time; through .staging/ and a move, as a committed
	# data file travels; four at once) and pyarrow's raw upload.
	secs() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$SCRATCH/last.out"; }
	timed "$BIN/s3upload" -src "$SCRATCH/local" -to "s3://$P/u1?endpoint=$ENDPOINT&path-style=true" >/dev/null
	u1+=("$(secs)")
	timed "$BIN/s3upload" -src "$SCRATCH/local" -to "s3://$P/us?endpoint=$ENDPOINT&path-style=true" -staged >/dev/null
	us+=("$(secs)")
	timed "$BIN/s3upload" -src "$SCRATCH/local" -to "s3://$P/u4?endpoint=$ENDPOINT&path-style=true" -parallel 4 >/dev/null
	u4+=("$(secs)")
	timed "$PY" bench/py/s3_write.py --raw "$SCRATCH/local" "$ENDPOINT" "$P" raw >/dev/null
	ur+=("$(secs)")
	UBYTES=$(du -sb --exclude=history --exclude=.staging "$SCRATCH/local" | cut -f1)
	if [ "$rep" = 1 ] && [ -z "${BENCH_S3_SKIP_PANDAS:-}" ]; then # slow: once
		read -r w r _ < <(AWS_ENDPOINT_URL=$ENDPOINT timed "$PY" bench/py/wandb_to_parquet.py "$W/wandb" "s3://$P/pandas.parquet")
		qw+=("$w") qr+=("$r")
	fi
	rm -rf "$SRV/data/$B" "$SRV/data/$P"
	log "rep $rep: local ${lw[-1]} s (CPU ${lc[-1]} s), s3 ${sw[-1]} s (CPU ${sc[-1]} s)${OLD:+, old binary: local ${ow[-1]:-} s (CPU ${oc[-1]:-} s), s3 ${xw[-1]:-} s (CPU ${xc[-1]:-} s)}, pyarrow upload ${pt[-1]} s (CPU ${pc[-1]} s; process ${pw[-1]} s), aligned ${at[-1]} s (CPU ${ac[-1]} s), runferry writer from memory ${kt[-1]} s (CPU ${kk[-1]} s;${yt:+ old writer ${yt[-1]} s, CPU ${yk[-1]} s;} process ${kw[-1]} s, CPU ${kc[-1]} s; same rows as pyarrow's: $(cat "$SCRATCH/compare.out")), pandas pipeline to S3 ${qw[*]:-skipped} s, upload alone: runferry ${u1[-1]} s (staged ${us[-1]}, 4 at once ${u4[-1]}), pyarrow raw ${ur[-1]} s"
done
B=mem-$RANDOM
E=$ENDPOINT B=$B mkbucket
read -r mw mr _ < <(timed "$RF" copy "wandb:$WM/wandb" "parquet:$(loc "$B")" --no-state -q)
read -r lsw lsr _ < <(timed "$RF" ls "parquet:$(loc "$B")")
rm -rf "$SCRATCH/restored"
read -r mrw mrr _ < <(timed "$RF" copy "parquet:$(loc "$B")" "parquet:$SCRATCH/restored" --no-state -q)
MRPTS=$("$RF" ls --count --json "parquet:$SCRATCH/restored" | "$PY" -c 'import json,sys; print(sum(r["points"] for r in json.load(sys.stdin)))' 2>/dev/null || echo "?")
rm -rf "$SRV/data/$B" "$SCRATCH/restored"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

LW=$(median "${lw[@]}") SW=$(median "${sw[@]}") PT=$(median "${pt[@]}") PW=$(median "${pw[@]}")
QW=$(median "${qw[@]:-0}") QR=$(median "${qr[@]:-0}")
U1=$(median "${u1[@]}") US=$(median "${us[@]}") U4=$(median "${u4[@]}") UR=$(median "${ur[@]}")
LR=$(median "${lr[@]}") SR=$(median "${sr[@]}") PR=$(median "${pr[@]}")
RW=$(median "${rw[@]}") RR=$(median "${rr[@]}")
LC=$(median "${lc[@]}") SC=$(median "${sc[@]}")
KT=$(median "${kt[@]}") KW=$(median "${kw[@]}") KR=$(median "${kr[@]}") KC=$(median "${kc[@]}") KK=$(median "${kk[@]}")
PC=$(median "${pc[@]}") AT=$(median "${at[@]}") AC=$(median "${ac[@]}") AR=$(median "${ar[@]}")
R6=$(ratio "$KT" "$AT")
R1=$(ratio "$SW" "$LW") R2=$(ratio "$SW" "$PT") R5=$(ratio "$KT" "$PT") R3=$([ "$QW" = 0 ] || ratio "$SW" "$QW")
met1=no met2=no met3=no met4=no met5=no
[ "$(echo "$R5 <= 1" | bc)" = 1 ] && met5=yes
[ "$(echo "$R1 <= 1.5" | bc)" = 1 ] && met1=yes
[ "$(echo "$R2 <= 1" | bc)" = 1 ] && met2=yes
[ "$(echo "$mr <= $SR * 1.5" | bc)" = 1 ] && met3=yes
[ "$(echo "$mrr <= $RR * 1.5" | bc)" = 1 ] && met4=yes
PTS=$((ROWS * 20))
{
	echo "Run $DATE, build $(git rev-parse --short HEAD), load average $LOAD_BEFORE before / $LOAD_AFTER after, $(nproc) cores; versitygw ${VGW_MODULE##*@}."
	echo
	echo "| measurement (one run, $ROWS rows x 20 keys = $PTS points; median of $REPEAT) | wall | peak RSS | ratio to the S3 copy | target | met? |"
	echo "|---|---|---|---|---|---|"
	echo "| runferry copy W&B -> \`parquet:s3://\` (versitygw on 127.0.0.1; CPU $SC s) | $SW s | $SR MB | 1 | | |"
	echo "| runferry copy W&B -> local \`parquet:\` (CPU $LC s) | $LW s | $LR MB | S3 takes ${R1}x | <= 1.5x | $met1 |"
	if [ -n "$OLD" ]; then
		echo "| the old binary ($OLD): W&B -> \`parquet:s3://\` (CPU $(median "${xc[@]}") s) | $(median "${xw[@]}") s | $(median "${xr[@]}") MB | S3 copy takes $(ratio "$SW" "$(median "${xw[@]}")")x (CPU $(ratio "$SC" "$(median "${xc[@]}")")x) | | |"
		echo "| the old binary: W&B -> local \`parquet:\` (CPU $(median "${oc[@]}") s) | $(median "${ow[@]}") s | $(median "${orr[@]}") MB | local copy takes $(ratio "$LW" "$(median "${ow[@]}")")x (CPU $(ratio "$LC" "$(median "${oc[@]}")")x) | | |"
	fi
	echo "| pyarrow S3FileSystem writes the same files, its defaults (encode + upload only; CPU $PC s, process $PW s) | $PT s | $PR MB | S3 copy takes ${R2}x | <= 1x | $met2 |"
	echo "| pyarrow with runferry's settings (\`s3_write.py --aligned\`: same encodings, row groups, page size, page index; CPU $AC s) | $AT s | $AR MB | | | |"
	echo "| like for like: runferry's archive writer, the run already in memory (\`s3archive\`: engine, sort, encode, upload, commit; CPU of the timed part $KK s against pyarrow's $PC s / aligned $AC s; process $KW s, CPU $KC s) | $KT s | $KR MB | takes ${R5}x pyarrow's encode + upload (${R6}x the aligned one) | <= 1x | $met5 |"
	[ -z "${yt[*]}" ] || echo "| the old binary's writer, like for like (\`s3archive\` next to $OLD; CPU of the timed part $(median "${yk[@]}") s) | $(median "${yt[@]}") s | | this tree's takes $(ratio "$KT" "$(median "${yt[@]}")")x (CPU $(ratio "$KK" "$(median "${yk[@]}")")x) | | |"
	[ "$QW" = 0 ] || echo "| the same points W&B -> pandas -> pyarrow S3FileSystem, one file (bench/py/wandb_to_parquet.py, whole process, run once) | $QW s | $QR MB | S3 copy takes ${R3}x | | |"
	echo "| runferry copy W&B -> \`parquet:s3://\`, $MEM_ROWS rows ($((MEM_ROWS * 20)) points) | $mw s | $mr MB | peak RSS $(ratio "$mr" "$SR")x of the small run | flat (<= 1.5x) | $met3 |"
	echo "| restore: runferry copy \`parquet:s3://\` -> local \`parquet:\`, the whole small archive (checked equal) | $RW s | $RR MB | | | |"
	echo "| restore of the $MEM_ROWS-row archive ($MRPTS points arrived) | $mrw s | $mrr MB | peak RSS $(ratio "$mrr" "$RR")x of the small restore | flat (<= 1.5x) | $met4 |"
	echo "| \`runferry ls parquet:s3://\` of the $MEM_ROWS-row archive | $lsw s | $lsr MB | | | |"
	echo
	echo "Upload alone, the same $(echo "scale=1; $UBYTES / 1048576" | bc) MiB of Parquet files of the local archive, same server (seconds of uploading, median of $REPEAT):"
	echo
	echo "| uploader | seconds | ratio to pyarrow's raw upload |"
	echo "|---|---|---|"
	echo "| pyarrow S3FileSystem, raw bytes (\`s3_write.py --raw\`), one at a time | $UR | 1 |"
	echo "| runferry Store, straight to the key, one at a time (\`s3upload\`) | $U1 | $(ratio "$U1" "$UR")x |"
	echo "| runferry Store, four at a time (\`s3upload -parallel 4\`) | $U4 | $(ratio "$U4" "$UR")x |"
	echo "| runferry Store, through .staging/ and a move, as a data file is committed (\`s3upload -staged\`) | $US | $(ratio "$US" "$UR")x |"
} | tee "$SCRATCH/results.md"
