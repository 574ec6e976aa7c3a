#!/bin/bash
# Run "$@" in the private network namespace this is started in (unshare -n): only loopback,
# with multicast routed there. Ableton Link discovers peers by multicast on every interface,
# and tests must send nothing beyond this machine. With LINK_PEER_COMMANDS and LINK_PEER_LOG
# set, a Link peer (link_peer.py) joins from the same namespace first.
set -e
ip link set lo up
ip route add 224.0.0.0/4 dev lo
if [ -n "$LINK_PEER_COMMANDS" ]; then
    "${LINK_PEER_PYTHON:-python3}" "$(dirname "$0")/link_peer.py" "$LINK_PEER_COMMANDS" "$LINK_PEER_LOG" &
fi
exec "$@"
