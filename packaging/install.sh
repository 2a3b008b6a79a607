#!/bin/sh
# Installs the performance-metrics bundle this script sits in onto an Opentrons Flex, or
# into a folder standing for one (--root). POSIX sh: it runs in the robot's shell.
#
#   install.sh [--root DIR] [--tracker system-resource-tracker|system-resource-tracker-dev]
#              [--python-dir DIR] [--systemd | --no-systemd]
#
# Files go under DIR (default /): the binaries to /opt/opentrons-performance-metrics/bin,
# the units to /etc/systemd/system, the Python package to /opt/opentrons-robot-server (the
# first entry of robot-server's PYTHONPATH; the package it replaces is kept aside and put
# back by uninstall.sh). Every file and directory made is listed in
# /opt/opentrons-performance-metrics/installed, which uninstall.sh removes again.
#
# With the real root (the default), the root filesystem is remounted read-write for the
# copy only and read-only again whatever fails, then systemd reloads, enables and restarts
# the daemons. With another --root nothing outside DIR is touched (no mount, no systemctl)
# unless --systemd is given (tests do, with stand-ins for mount and systemctl).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=/
tracker=system-resource-tracker
python_dir=/opt/opentrons-robot-server
systemd=auto

die() { echo "install.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --tracker) [ $# -ge 2 ] || die "--tracker needs a unit name"; tracker=$2; shift 2 ;;
    --python-dir) [ $# -ge 2 ] || die "--python-dir needs a directory"; python_dir=$2; shift 2 ;;
    --systemd) systemd=yes; shift ;;
    --no-systemd) systemd=no; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$tracker" in
  system-resource-tracker) other_tracker=system-resource-tracker-dev ;;
  system-resource-tracker-dev) other_tracker=system-resource-tracker ;;
  *) die "--tracker must be system-resource-tracker or system-resource-tracker-dev, not \"$tracker\"" ;;
esac
case "$root" in /*) ;; *) die "--root must be an absolute path, not \"$root\"" ;; esac
root=${root%/}   # "" for the real root: every path below is "$root/..."
[ -d "$root/" ] || die "--root $root is not a directory"
if [ "$systemd" = auto ]; then
  if [ -z "$root" ]; then systemd=yes; else systemd=no; fi
fi
for f in bin/perf-drainer bin/system-resource-tracker systemd/perf-drainer.service python; do
  [ -e "$here/$f" ] || die "$here is not a complete bundle: $f is missing"
done

prefix=/opt/opentrons-performance-metrics
state=$root$prefix
manifest=$state/installed
backup=$state/python-backup
units="perf-drainer.service system-resource-tracker.service system-resource-tracker-dev.service"
services="perf-drainer $tracker"
# The image's Python tracker runs `python3 -m performance_metrics.system_resource_tracker`,
# a module the package installed here does not have; system-resource-tracker replaces it.
image_tracker=opentrons-system-resource-tracker.service

if [ "$systemd" = yes ]; then
  # Whatever fails from here on (or a dropped connection: HUP), the root filesystem goes
  # back to read-only.
  trap 'mount -o remount,ro /' EXIT
  trap 'exit 1' HUP INT TERM
  mount -o remount,rw /
fi

# The list of what an earlier install made is kept (its directories existed before this
# run only because it made them); new entries are appended and the list deduplicated.
list=$(mktemp "${TMPDIR:-/tmp}/perf-metrics-install.XXXXXX")
[ -f "$manifest" ] && cat "$manifest" > "$list"
note() { printf '%s %s\n' "$1" "$2" >> "$list"; }
# mkdir -p that notes each directory it creates.
make_dir() {
  case "$1" in "$root"/*) ;; *) return 0 ;; esac
  [ -d "$1" ] && return 0
  make_dir "$(dirname "$1")"
  mkdir -m 0755 "$1"
  note d "${1#"$root"}"
}
# Copies $1 to $2 through a temporary name, so that a running daemon's binary is replaced
# atomically, never overwritten in place.
put() {
  make_dir "$(dirname "$2")"
  cp "$1" "$2.new"
  chmod "$3" "$2.new"
  mv -f "$2.new" "$2"
  note f "${2#"$root"}"
}

for b in "$here"/bin/*; do
  put "$b" "$root$prefix/bin/$(basename "$b")" 0755
done
for u in $units; do
  put "$here/systemd/$u" "$root/etc/systemd/system/$u" 0644
done
put "$here/uninstall.sh" "$state/uninstall.sh" 0755
put "$here/VERSION" "$state/VERSION" 0644

# The Python package. The first install moves the package it replaces (and its metadata)
# aside; a reinstall keeps that backup, it never backs up a package of ours.
pydir=$root$python_dir
make_dir "$pydir"
if [ ! -f "$manifest" ] && [ ! -d "$backup" ]; then
  for old in "$pydir"/performance_metrics "$pydir"/performance_metrics-*.dist-info \
             "$pydir"/performance_metrics-*.egg-info; do
    [ -e "$old" ] || continue
    make_dir "$backup"
    mv "$old" "$backup/"
  done
fi
# Our previous version's files go first, so that nothing stale is importable.
if [ -f "$manifest" ]; then
  sed -n "s|^f \\($python_dir/performance_metrics.*\\)|\\1|p" "$manifest" | while IFS= read -r f; do
    rm -f "$root$f"
  done
fi
(cd "$here/python" && find . -type d) | while IFS= read -r d; do
  make_dir "$pydir/${d#./}"
done
(cd "$here/python" && find . -type f) | while IFS= read -r f; do
  put "$here/python/${f#./}" "$pydir/${f#./}" 0644
done

if [ -e "$root/lib/systemd/system/$image_tracker" ] || [ -e "$root/usr/lib/systemd/system/$image_tracker" ]; then
  if [ "$systemd" = yes ]; then systemctl stop "$image_tracker" 2>/dev/null || true; fi
  make_dir "$root/etc/systemd/system"
  ln -sfn /dev/null "$root/etc/systemd/system/$image_tracker"   # masked
  note f "/etc/systemd/system/$image_tracker"
fi

make_dir "$state"
sort -u "$list" > "$manifest.new"
mv -f "$manifest.new" "$manifest"
rm -f "$list"

if [ "$systemd" = yes ]; then
  systemctl daemon-reload
  systemctl disable --quiet "$other_tracker" 2>/dev/null || true
  systemctl enable --quiet $services
  mount -o remount,ro /
  trap - EXIT
  systemctl restart $services
  systemctl --no-pager --lines=0 status $services || true
fi
echo "performance-metrics $(cat "$here/VERSION") installed into ${root:-/} ($(wc -l < "$manifest") entries in $prefix/installed)"
