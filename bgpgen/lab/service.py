"""The service manager of a lab device, as deploy sees it: a ``systemctl`` in the device's
``/usr/local/sbin`` that the lab's supervisor stands behind.

bgpgen drives services on a real host with systemctl (``systemctl kill --signal=HUP
--kill-whom=main gobgpd``, ``systemctl daemon-reload``, ``systemctl restart gobgpd``; ``systemctl
show --property MainPID --value gobgpd`` is answered too); in a lab the same commands reach this script, which finds the unit's main
process in the pid file the supervisor keeps for it (``/run/bgpgen-lab/UNIT.pid``) and
signals it. A restarted daemon is started again by the supervisor, as systemd would; the
script waits for the new process. Only what bgpgen uses is answered; anything else is refused
with systemctl's own exit code for an unknown operation.
"""

from __future__ import annotations

from .mounts import PIDS

SYSTEMCTL = r"""#!/bin/sh
# systemctl of a bgpgen lab device: the lab's supervisor is this host's service manager.
# Units are the daemons the lab runs; their main PIDs are in PIDS/UNIT.pid.
verb=""; unit=""; signal=TERM; value=0; property=""
while [ $# -gt 0 ]; do
  case "$1" in
    --signal=*) signal=${1#--signal=} ;;
    -s|--signal) shift; signal=$1 ;;
    --kill-whom=*|--no-pager|--quiet|-q|--no-block) ;;
    --value) value=1 ;;
    --property=*|-p*) property=${1#--property=}; property=${property#-p} ;;
    --property) shift; property=$1 ;;
    -*) echo "systemctl (bgpgen lab): option $1 is not supported" >&2; exit 1 ;;
    *) if [ -z "$verb" ]; then verb=$1; else unit=${1%.service}; fi ;;
  esac
  shift
done
[ "$verb" = daemon-reload ] && exit 0
pidfile=PIDS/$unit.pid
pid=$(cat "$pidfile" 2>/dev/null)
if [ -z "$unit" ] || [ -z "$pid" ]; then
  echo "Unit $unit.service could not be found." >&2; exit 5
fi
case "$verb" in
  show)
    [ "$property" = MainPID ] || { echo "property $property is not supported" >&2; exit 1; }
    if [ "$value" = 1 ]; then echo "$pid"; else echo "MainPID=$pid"; fi ;;
  is-active)
    if kill -0 "$pid" 2>/dev/null; then echo active; else echo inactive; exit 3; fi ;;
  kill) kill -s "${signal#SIG}" "$pid" ;;
  reload) kill -s HUP "$pid" ;;
  restart)
    # as systemd stops a unit: SIGTERM, then SIGCONT (a stopped process can die), and
    # SIGKILL when it is still there after the stop timeout (10 s here)
    kill -s TERM "$pid" 2>/dev/null; kill -s CONT "$pid" 2>/dev/null
    i=0
    while [ $i -lt 300 ]; do
      [ $i -eq 100 ] && kill -s KILL "$pid" 2>/dev/null
      new=$(cat "$pidfile" 2>/dev/null)
      if [ -n "$new" ] && [ "$new" != "$pid" ] && kill -0 "$new" 2>/dev/null; then exit 0; fi
      sleep 0.1; i=$((i + 1))
    done
    echo "Job for $unit.service failed: it did not come back" >&2; exit 1 ;;
  *) echo "systemctl (bgpgen lab): $verb is not supported" >&2; exit 1 ;;
esac
""".replace("PIDS", PIDS)
