#!/usr/bin/env bash
# Builds the programs of the end-to-end test from Go modules into a cache outside the repo, and
# only those that are missing or out of date (a warm machine rebuilds nothing):
#   otelcol-mlmon  the slim collector of collector/otelcol-mlmon (our module)
#   jaeger         Jaeger v2, github.com/jaegertracing/jaeger/cmd/jaeger at v1.76.0 (v2.13.0),
#                  through the tool module collector/tools/jaeger (its go.mod has replace
#                  directives, so `go install pkg@version` refuses it)
#   victoria-logs  VictoriaLogs, the OTLP log store standing in for Loki (whose module is not
#                  served), github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.1
#
# Usage: bash collector/build.sh [otelcol-mlmon|jaeger|victoria-logs ...]   (default: all)
# Binaries go to ${OTEL_MLMON_CACHE:-$HOME/.cache/otel-mlmon}/bin; Go's own caches stay where
# `go env GOCACHE GOMODCACHE` says (outside the repo). Cold on 2 cores: see docs/stack.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${OTEL_MLMON_CACHE:-$HOME/.cache/otel-mlmon}"
bin="$cache/bin"
mkdir -p "$bin"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
export CGO_ENABLED=0

VICTORIALOGS_VERSION=v1.52.1

# The stamp of a module directory: its go.mod, go.sum and Go sources, and the Go version.
module_stamp() {
  (cd "$1" && cat go.mod go.sum ./*.go 2>/dev/null; go version) | sha256sum | cut -c1-16
}

# build NAME STAMP COMMAND...: run COMMAND (which writes $bin/NAME.tmp) unless the binary's
# recorded stamp matches.
build() {
  local name="$1" stamp="$2"
  shift 2
  if [[ -x "$bin/$name" && "$(cat "$bin/$name.stamp" 2>/dev/null)" == "$stamp" ]]; then
    echo "build.sh: $name is up to date ($bin/$name)"
    return
  fi
  echo "build.sh: building $name ..."
  local start=$SECONDS
  "$@"
  mv -f "$bin/$name.tmp" "$bin/$name"
  echo "$stamp" > "$bin/$name.stamp"
  echo "build.sh: built $name in $((SECONDS - start)) s"
}

build_otelcol() {
  build otelcol-mlmon "$(module_stamp "$here/otelcol-mlmon")" \
    bash -c "cd '$here/otelcol-mlmon' && go build -trimpath -o '$bin/otelcol-mlmon.tmp' ."
}

build_jaeger() {
  build jaeger "$(module_stamp "$here/tools/jaeger")" \
    bash -c "cd '$here/tools/jaeger' && go build -trimpath -o '$bin/jaeger.tmp' \
      github.com/jaegertracing/jaeger/cmd/jaeger"
}

build_victorialogs() {
  local gobin
  gobin="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$gobin'" RETURN
  build victoria-logs "$VICTORIALOGS_VERSION $(go version)" \
    bash -c "GOBIN='$gobin' go install -trimpath \
      github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION \
      && mv '$gobin/victoria-logs' '$bin/victoria-logs.tmp'"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(otelcol-mlmon jaeger victoria-logs)
for target in "${targets[@]}"; do
  case "$target" in
    otelcol-mlmon) build_otelcol ;;
    jaeger) build_jaeger ;;
    victoria-logs) build_victorialogs ;;
    *) echo "build.sh: unknown target $target" >&2; exit 2 ;;
  esac
done
