#!/bin/sh
# Load every profile in /profiles into the node's kernel, with the node's own apparmor_parser and abstractions (run
# in the host mount namespace through nsenter), then re-check periodically: profiles vanish on reboot and may be
# removed by hand. A node without AppArmor, or without apparmor_parser, is left untouched.
set -u
PROFILES_DIR=/profiles
INTERVAL="${RECHECK_SECONDS:-300}"

enabled() {
  [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = "Y" ]
}

# $1 = force: at start every profile is (re)loaded, so a changed profile replaces the old one; later passes only
# reload profiles that disappeared.
load_all() {
  force="$1"
  for file in "$PROFILES_DIR"/*; do
    case "$file" in *.sh) continue ;; esac
    [ -f "$file" ] || continue
    name=$(sed -n 's/^profile \([^ ]*\) .*/\1/p' "$file" | head -n 1)
    if [ "$force" = no ] && nsenter -t 1 -m -- cat /sys/kernel/security/apparmor/profiles 2>/dev/null | grep -q "^$name "; then
      continue
    fi
    if nsenter -t 1 -m -- apparmor_parser -r -W <"$file"; then
      echo "loaded AppArmor profile $name"
    else
      echo "failed to load AppArmor profile $name" >&2
    fi
  done
}

if ! enabled; then
  echo "AppArmor is not enabled on this node: nothing to load"
  exec sleep infinity
fi
if ! nsenter -t 1 -m -- sh -c 'command -v apparmor_parser' >/dev/null 2>&1; then
  echo "AppArmor is enabled but the node has no apparmor_parser: cannot load profiles" >&2
  exec sleep infinity
fi
load_all yes
while true; do
  sleep "$INTERVAL"
  load_all no
done
