#!/bin/sh
# Removes what install.sh installed, as listed in
# /opt/opentrons-performance-metrics/installed, and puts back the Python package it
# replaced. Installed with the daemons, so a robot can be cleaned without the bundle.
#
#   uninstall.sh [--root DIR] [--purge-data] [--systemd | --no-systemd]
#
# --purge-data also deletes the CSV data in /data/performance_metrics_data{,_dev} and the
# rings in /dev/shm/performance_metrics: copy the CSVs off the robot first. --root and
# --systemd mean what they mean for install.sh (systemctl and mount only for the real root).
set -eu

root=/
purge=no
systemd=auto
die() { echo "uninstall.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --purge-data) purge=yes; shift ;;
    --systemd) systemd=yes; shift ;;
    --no-systemd) systemd=no; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$root" in /*) ;; *) die "--root must be an absolute path, not \"$root\"" ;; esac
root=${root%/}
if [ "$systemd" = auto ]; then
  if [ -z "$root" ]; then systemd=yes; else systemd=no; fi
fi

prefix=/opt/opentrons-performance-metrics
state=$root$prefix
manifest=$state/installed
backup=$state/python-backup
units="perf-drainer system-resource-tracker system-resource-tracker-dev"
[ -f "$manifest" ] || die "nothing to remove: $manifest does not exist"

if [ "$systemd" = yes ]; then
  systemctl stop $units 2>/dev/null || true
  trap 'mount -o remount,ro /' EXIT
  trap 'exit 1' HUP INT TERM
  mount -o remount,rw /
  systemctl disable --quiet $units 2>/dev/null || true
fi

# Read the whole list before deleting it (it is one of the files in the state folder).
entries=$(cat "$manifest")
printf '%s\n' "$entries" | sed -n 's/^f //p' | while IFS= read -r f; do
  rm -f "$root$f"
done
# The replaced Python package goes back where it was.
if [ -d "$backup" ]; then
  python_dir=$(printf '%s\n' "$entries" | sed -n 's|^f \(.*\)/performance_metrics/__init__.py$|\1|p' | head -n 1)
  if [ -n "$python_dir" ]; then
    for old in "$backup"/* "$backup"/.[!.]*; do
      [ -e "$old" ] || continue
      rm -rf "$root$python_dir/$(basename "$old")"
      mv "$old" "$root$python_dir/"
    done
  fi
  rmdir "$backup" 2>/dev/null || true
fi
rm -f "$manifest"
# Directories it made, deepest first; one that holds something else stays.
# Python may have cached bytecode in a package directory it made.
printf '%s\n' "$entries" | sed -n 's/^d //p' | sort -r | while IFS= read -r d; do
  rm -rf "$root$d/__pycache__"
  rmdir "$root$d" 2>/dev/null || true
done

if [ "$systemd" = yes ]; then
  mount -o remount,ro /
  trap - EXIT
  systemctl daemon-reload
fi
if [ "$purge" = yes ]; then
  rm -rf "$root/data/performance_metrics_data" "$root/data/performance_metrics_data_dev" \
    "$root/dev/shm/performance_metrics"
fi
if [ "$systemd" = yes ]; then
  for u in $units; do
    if systemctl is-active --quiet "$u"; then echo "uninstall.sh: $u is still active" >&2; exit 1; fi
  done
fi
echo "performance-metrics removed from ${root:-/}"
