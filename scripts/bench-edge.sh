#!/usr/bin/env bash
# The edge against nginx (proxy_cache) in front of the same origin, with the same certificate,
# the same load generators (wrk, h2load) and the same cores: servers and origin pinned to CPU 0
# with one worker each, the load generator to CPU 1, rounds alternating. Prints figures;
# asserts nothing. Needs Debian's nginx, wrk and nghttp2-client (h2load).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/carapace/target}"
ROUNDS="${ROUNDS:-3}"
DUR="${DUR:-8}"
ORIGIN=127.0.0.1:9080
EDGE=9443
NGINX=9444

for tool in nginx wrk h2load taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx wrk nghttp2-client)"; exit 1; }
done
cargo build --release -q -p carapace-edge --example edge_bench
BIN="$CARGO_TARGET_DIR/release/examples/edge_bench"
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
}

rss_kib() { # total resident set of a process and its children, KiB
  local total=0
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

wrk_run() { # port path [extra wrk args...] → "rps p99"
  local port=$1 path=$2; shift 2
  local out
  out="$(taskset -c 1 wrk -t1 -c32 -d"${DUR}s" --latency "$@" "https://localhost:$port$path")"
  local rps p99
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  echo "$rps $p99"
}

h2_run() { # port → req/s
  taskset -c 1 h2load -c32 -m10 -D "$DUR" "https://localhost:$1/1k" 2>/dev/null | awk '/^finished in/ {print $4}'
}

report() { # label, then lines "target value..."
  echo "## $1"
  cat
  echo
}

for kind in ec rsa; do
  start_servers "$kind"
  for port in $EDGE $NGINX; do
    taskset -c 1 wrk -t1 -c4 -d1s "https://localhost:$port/1k" >/dev/null
    echo "check $port $(curl -sk -o /dev/null -D - "https://localhost:$port/1k" | grep -i '^x-cache' | tr -d '\r')"
  done
  for round in $(seq "$ROUNDS"); do
    for target in edge nginx; do
      port=$([ "$target" = edge ] && echo $EDGE || echo $NGINX)
      if [ "$kind" = ec ]; then
        echo "cached-h1 $target $(wrk_run "$port" /1k)"
        echo "cached-h2 $target $(h2_run "$port")"
        echo "miss $target $(wrk_run "$port" /miss/x)"
      fi
      echo "handshake-$kind $target $(wrk_run "$port" /1k -H 'Connection: close')"
    done
  done
  stop_servers
done | tee "$WORK/results.txt"

# Memory per 100,000 cached 1 KiB objects (fresh processes; nginx keeps bodies in files).
seq 1 100000 | sed "s|^|/obj/|" >"$WORK/paths"
start_servers ec
for target in edge nginx; do
  port=$([ "$target" = edge ] && echo $EDGE || echo $NGINX)
  pid=$([ "$target" = edge ] && echo "$EDGE_PID" || echo "$NGINX_PID")
  sed "s|^|https://localhost:$port|" "$WORK/paths" >"$WORK/uris"
  taskset -c 1 h2load -n 1000 -c 4 "https://localhost:$port/1k" >/dev/null 2>&1
  before=$(rss_kib "$pid")
  taskset -c 1 h2load -n 100000 -c 8 -m 10 -i "$WORK/uris" >/dev/null 2>&1
  sleep 6
  after=$(rss_kib "$pid")
  disk=$(du -sk "$WORK/nginx/cache" | cut -f1)
  echo "memory-100k $target rss_before_kib=$before rss_after_kib=$after delta_kib=$((after - before)) nginx_cache_disk_kib=$disk"
done
stop_servers
