#!/usr/bin/env bash
# The edge against nginx (proxy_cache) in front of the same origin, with the same certificate,
# the same load generators (wrk, h2load) and the same cores: servers and origin pinned to CPU 0
# with one worker each, the load generator to CPU 1, rounds alternating. Three servers: the
# edge crate alone (examples/edge_bench), the real `carapace serve` binary (API, workers and
# edge in one process, the distribution made through the Lightsail API with the AWS CLI), and
# nginx. Prints figures; asserts nothing. Needs Debian's nginx, wrk and nghttp2-client
# (h2load), and the AWS CLI (the test venv's, or one on PATH). FIGURES picks figures (any of
# cached-h1 cached-h2 miss handshake memory; all by default), e.g. FIGURES=miss.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carapace/target}"
ROUNDS="${ROUNDS:-3}"
FIGURES=" ${FIGURES:-cached-h1 cached-h2 miss handshake memory} "
want() { [[ "$FIGURES" == *" $1 "* ]]; }
DUR="${DUR:-8}"
ORIGIN=127.0.0.1:9080
EDGE=9443
NGINX=9444
CARAPACE=9445
CARAPACE_API=9566
VENV="${CARAPACE_VENV:-$HOME/.cache/carapace/venv}"
[ -x "$VENV/bin/aws" ] && export PATH="$VENV/bin:$PATH"

for tool in nginx wrk h2load taskset aws; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk nghttp2-client)"; exit 1; }
done
cargo build --release -q -p carapace-edge --example edge_bench
cargo build --release -q -p carapace --bin carapace
BIN="$CARGO_TARGET_DIR/release/examples/edge_bench"
CARAPACE_BIN="$CARGO_TARGET_DIR/release/carapace"
WORK="$(mktemp -d)"
PIDS=()
stop_servers() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap 'stop_servers; kill "$ORIGIN_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened"; exit 1; }

taskset -c 0 "$BIN" origin "$ORIGIN" >/dev/null &
ORIGIN_PID=$!
wait_port 9080

start_servers() { # $1 = ec | rsa
  local certs="$WORK/$1"
  [ -f "$certs/cert.pem" ] || "$BIN" certs "$certs" "$1" >/dev/null
  mkdir -p "$WORK/nginx/logs" "$WORK/nginx/cache"
  rm -rf "$WORK/nginx/cache"/*
  cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=edge:64m max_size=4g inactive=2h use_temp_path=off;
  upstream origin { server $ORIGIN; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX ssl http2;
    server_name localhost;
    ssl_certificate $certs/cert.pem;
    ssl_certificate_key $certs/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location / { proxy_pass http://origin; proxy_cache edge; add_header X-Cache \$upstream_cache_status; }
    location /miss/ { proxy_pass http://origin; proxy_cache off; }
  }
}
EOF
  taskset -c 0 "$BIN" edge "127.0.0.1:$EDGE" "$certs" "$ORIGIN" >/dev/null 2>&1 &
  PIDS+=($!)
  EDGE_PID=$!
  taskset -c 0 nginx -p "$WORK/nginx" -c "$WORK/nginx.conf" &
  PIDS+=($!)
  NGINX_PID=$!
  wait_port "$EDGE"
  wait_port "$NGINX"
  if [ "$1" = ec ]; then start_carapace; fi
}

# `carapace serve --dev` with one distribution on the same origin, made as a user makes it.
# Its default domain is served with the edge's own P-256 certificate from Carapace's CA; the
# load generators reach it by name with --connect-to (h2load), --resolve (curl) and a wrk
# script that resolves to loopback, so SNI carries the distribution's name.
start_carapace() {
  rm -rf "$WORK/carapace"
  # The same bounds as the edge's own run and nginx's (`keepalive_requests 100000000`).
  CARAPACE_LIGHTSAIL_ORIGINS="web=http://$ORIGIN" CARAPACE_EDGE_CACHE_BYTES=$((1 << 30)) RUST_LOG=warn \
    CARAPACE_EDGE_HTTP_MAX_REQUESTS_PER_CONNECTION=100000000 \
    taskset -c 0 "$CARAPACE_BIN" serve --dev --data-dir "$WORK/carapace" --listen "127.0.0.1:$CARAPACE_API" \
    --edge-https-listen "127.0.0.1:$CARAPACE" --edge-http-listen 127.0.0.1:9481 >"$WORK/carapace.log" 2>&1 &
  PIDS+=($!)
  CARAPACE_PID=$!
  wait_port "$CARAPACE_API"
  wait_port "$CARAPACE"
  local status=""
  export AWS_ACCESS_KEY_ID=123456789012 AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url "http://127.0.0.1:$CARAPACE_API" lightsail create-distribution \
    --distribution-name bench --bundle-id small_1_0 --origin name=web,regionName=us-east-1,protocolPolicy=http-only \
    --default-cache-behavior behavior=cache --cache-behaviors 'path=miss/*,behavior=dont-cache' >/dev/null
  for _ in $(seq 100); do
    read -r status CARAPACE_HOST < <(aws --endpoint-url "http://127.0.0.1:$CARAPACE_API" lightsail get-distributions \
      --distribution-name bench --query 'distributions[0].[status,domainName]' --output text)
    [ "$status" = Deployed ] && break
    sleep 0.2
  done
  [ "$status" = Deployed ] || { echo "distribution never Deployed ($status)"; exit 1; }
  echo 'wrk.resolve = function(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end' >"$WORK/loopback.lua"
}

# Where each target listens, the name it serves, and the client flags that reach that name.
target_port() { case $1 in edge) echo $EDGE ;; nginx) echo $NGINX ;; carapace) echo $CARAPACE ;; esac; }
target_host() { if [ "$1" = carapace ]; then echo "$CARAPACE_HOST"; else echo localhost; fi; }
target_wrk() { if [ "$1" = carapace ]; then echo "-s $WORK/loopback.lua"; fi; }
target_h2() { if [ "$1" = carapace ]; then echo "--connect-to=127.0.0.1:$CARAPACE"; fi; }
target_url() { echo "https://$(target_host "$1"):$(target_port "$1")$2"; }

rss_kib() { # total resident set of a process and its children, KiB
  local total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

wrk_run() { # target path [extra wrk args...] → "rps p99"
  local target=$1 path=$2; shift 2
  local out
  # shellcheck disable=SC2046
  out="$(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" --latency $(target_wrk "$target") "$@" "$(target_url "$target" "$path")")"
  local rps p99
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  echo "$rps $p99"
}

h2_run() { # target → req/s
  # shellcheck disable=SC2046
  taskset -c 1 h2load -c32 -m10 -D "$DUR" $(target_h2 "$1") "$(target_url "$1" /1k)" 2>/dev/null |
    awk '/^finished in/ {print $4}'
}

report() { # label, then lines "target value..."
  echo "## $1"
  cat
  echo
}

kinds=(ec)
if want handshake; then kinds+=(rsa); fi
for kind in "${kinds[@]}"; do
  start_servers "$kind"
  targets=(edge nginx)
  if [ "$kind" = ec ]; then targets=(edge carapace nginx); fi
  for target in "${targets[@]}"; do
    # shellcheck disable=SC2046
    taskset -c 1 wrk -t1 -c4 -d1s $(target_wrk "$target") "$(target_url "$target" /1k)" >/dev/null
    host=$(target_host "$target") port=$(target_port "$target")
    echo "check $target $(curl -sk --resolve "$host:$port:127.0.0.1" -o /dev/null -D - "$(target_url "$target" /1k)" |
      grep -i '^x-cache' | tr -d '\r')"
  done
  for round in $(seq "$ROUNDS"); do
    for target in "${targets[@]}"; do
      if [ "$kind" = ec ]; then
        if want cached-h1; then echo "cached-h1 $target $(wrk_run "$target" /1k)"; fi
        if want cached-h2; then echo "cached-h2 $target $(h2_run "$target")"; fi
        if want miss; then echo "miss $target $(wrk_run "$target" /miss/x)"; fi
      fi
      if want handshake; then echo "handshake-$kind $target $(wrk_run "$target" /1k -H 'Connection: close')"; fi
    done
  done
  stop_servers
done | tee "$WORK/results.txt"

# Memory per 100,000 cached 1 KiB objects (fresh processes; nginx keeps bodies in files).
want memory || exit 0
seq 1 100000 | sed "s|^|/obj/|" >"$WORK/paths"
start_servers ec
for target in edge carapace nginx; do
  pid=$(case $target in edge) echo "$EDGE_PID" ;; nginx) echo "$NGINX_PID" ;; carapace) echo "$CARAPACE_PID" ;; esac)
  sed "s|^|$(target_url "$target" "")|" "$WORK/paths" >"$WORK/uris"
  # shellcheck disable=SC2046
  taskset -c 1 h2load -n 1000 -c 4 $(target_h2 "$target") "$(target_url "$target" /1k)" >/dev/null 2>&1
  before=$(rss_kib "$pid")
  # shellcheck disable=SC2046
  taskset -c 1 h2load -n 100000 -c 8 -m 10 $(target_h2 "$target") -i "$WORK/uris" >/dev/null 2>&1
  sleep 6
  after=$(rss_kib "$pid")
  disk=$(du -sk "$WORK/nginx/cache" | cut -f1)
  echo "memory-100k $target rss_before_kib=$before rss_after_kib=$after delta_kib=$((after - before)) nginx_cache_disk_kib=$disk"
done
stop_servers
