#!/bin/sh
# Assembles the Flex bundle from what `make build-flex` built (the Makefile calls this):
#
#   build-bundle.sh VERSION BIN_DIR WHEEL OUT_DIR BINARY...
#
# OUT_DIR/performance-metrics-flex-VERSION.tar.gz holds one folder of that name with
# bin/ (the stripped aarch64 binaries), systemd/ (the units), wheel/ (the aarch64 wheel, for
# pip users), python/ (the same wheel unpacked, which is all a wheel install is: the robot
# needs neither pip nor unzip), install.sh, uninstall.sh and VERSION.
set -eu
[ $# -ge 5 ] || { echo "usage: build-bundle.sh VERSION BIN_DIR WHEEL OUT_DIR BINARY..." >&2; exit 2; }
version=$1 bin_dir=$2 wheel=$3 out=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
name=performance-metrics-flex-$version
mkdir -p "$out"
stage=$(mktemp -d "$out/.bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
b=$stage/$name
mkdir -p "$b/bin" "$b/systemd" "$b/wheel" "$b/python"
for bin in "$@"; do
  cp "$bin_dir/$bin" "$b/bin/"
done
cp "$repo"/systemd/*.service "$b/systemd/"
cp "$wheel" "$b/wheel/"
python3 -m zipfile -e "$wheel" "$b/python"
cp "$here/install.sh" "$here/uninstall.sh" "$b/"
chmod 0755 "$b/install.sh" "$b/uninstall.sh" "$b"/bin/*
printf '%s\n' "$version" > "$b/VERSION"
# Reproducible: sorted names, no owner, one fixed time.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$stage" -czf "$out/$name.tar.gz.new" "$name"
mv -f "$out/$name.tar.gz.new" "$out/$name.tar.gz"
echo "bundle: $out/$name.tar.gz"
