#!/usr/bin/env bash
# Builds libcni-driver offline from Debian's Go sources (GOPATH mode):
# needs golang-go and golang-github-appc-cni-dev (scripts/install-deps.sh).
# Usage: cni/libcni-driver/build.sh OUTPUT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTPUT}
export GO111MODULE=off GOPATH=/usr/share/gocode
export GOCACHE=${GOCACHE:-$(dirname "$out")/.gocache}
cd "$here"
go build -o "$out" .
