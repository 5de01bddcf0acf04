#!/bin/sh
# Container health check: is fraudwall answering DNS? Asks for use-application-dns.net, which
# fraudwall answers itself with NXDOMAIN (its Firefox DoH canary) after the access check and
# before any recursion, so the answer says "alive and answering" whatever the upstream DNS does.
# NOERROR is accepted too, for FRAUDWALL_HEALTH_NAME set to a sinkholed name when
# blocklists.doh_canary is off. SERVFAIL, REFUSED (127.0.0.1 missing from access.allow) or no
# answer within 2 s is unhealthy.
#
#   FRAUDWALL_HEALTH_ADDR  default 127.0.0.1   (an address in `listen`)
#   FRAUDWALL_HEALTH_PORT  default 53
#   FRAUDWALL_HEALTH_NAME  default use-application-dns.net
set -eu
addr=${FRAUDWALL_HEALTH_ADDR:-127.0.0.1}
port=${FRAUDWALL_HEALTH_PORT:-53}
name=${FRAUDWALL_HEALTH_NAME:-use-application-dns.net}
out=$(dig @"$addr" -p "$port" +time=2 +tries=1 "$name" A 2>&1) || {
  echo "unhealthy: no answer from $addr port $port"
  exit 1
}
case "$out" in
  *"status: NXDOMAIN"* | *"status: NOERROR"*) exit 0 ;;
esac
echo "unhealthy: $(printf '%s\n' "$out" | grep -m1 'status:' || echo 'unparsable answer')"
exit 1
