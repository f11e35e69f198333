#!/usr/bin/env bash
# Remove rumbled. Keeps /etc/rumbled (config) and /var/lib/rumbled (spool,
# evidence) unless --purge is given, so a reinstall resumes where it stopped.
#
# usage: deploy/uninstall.sh [--purge] [--destdir DIR]
set -euo pipefail
DESTDIR=""
PURGE=0
while (($#)); do
    case "$1" in
        --purge) PURGE=1; shift ;;
        --destdir) DESTDIR="$(realpath -m "$2")"; shift 2 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$DESTDIR" ]]; then
    systemctl disable --now rumbled.service 2>/dev/null || true
fi
rm -f "$DESTDIR/usr/bin/rumbled" "$DESTDIR/lib/systemd/system/rumbled.service"
rm -rf "$DESTDIR/usr/lib/rumbled" "$DESTDIR/usr/share/rumbled" "$DESTDIR/usr/share/doc/rumbled"
if ((PURGE)); then
    rm -rf "$DESTDIR/etc/rumbled" "$DESTDIR/var/lib/rumbled"
    [[ -z "$DESTDIR" ]] && { userdel rumbled 2>/dev/null || true; }
fi
[[ -z "$DESTDIR" ]] && systemctl daemon-reload
echo "rumbled removed$( ((PURGE)) && echo ", with its config and data" || echo "; config and data kept")"
