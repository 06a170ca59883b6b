#!/usr/bin/env bash
# Install the bundle with its desktop integration (launcher, menu entry, icons, AppStream metadata).
#   packaging/install-linux.sh                    for this user, into ~/.local
#   sudo PREFIX=/usr/local packaging/install-linux.sh   for everyone
#   DESTDIR=/tmp/stage PREFIX=/usr packaging/install-linux.sh   staged, for a distribution package
# BUNDLE (default dist/workbench) is the folder packaging/build.sh made.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="${BUNDLE:-$root/dist/workbench}"
prefix="${PREFIX:-$HOME/.local}"
dest="${DESTDIR:-}$prefix"
share="$dest/share"
[ -x "$bundle/workbench" ] || {
    echo "install-linux: no bundle at $bundle: run packaging/build.sh first" >&2
    exit 1
}

install -d "$dest/lib" "$dest/bin" "$share/applications" "$share/metainfo" "$share/icons/hicolor/scalable/apps"
rm -rf "$dest/lib/workbench"
cp -a "$bundle" "$dest/lib/workbench"
ln -sfn "$prefix/lib/workbench/workbench" "$dest/bin/workbench"
install -m 644 "$root/resources/workbench.desktop" "$share/applications/"
install -m 644 "$root"/resources/*.metainfo.xml "$share/metainfo/"
install -m 644 "$root/workbench/ui/icons/workbench.svg" "$share/icons/hicolor/scalable/apps/"
cp -R "$root/resources/icons/hicolor/." "$share/icons/hicolor/"

# Caches are refreshed only for a real installation; a staged one leaves that to the package manager.
if [ -z "${DESTDIR:-}" ]; then
    if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$share/applications"; fi
    if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -q -t "$share/icons/hicolor" || true; fi
fi
echo "installed $prefix/bin/workbench -> $prefix/lib/workbench/workbench"
