#!/usr/bin/env bash
# The web console's page times with 1,000 applications, 2,000 federated
# credentials and 50 managed identities, and how long applying them as one
# configuration file takes. Release build: cargo build --release && bench/console-pages.sh
# Prints, per page, the median of 7 requests from request sent to first byte
# (loopback, after the TLS handshake): the server's time.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
W=${W:-$ROOT/target/release/wisp}
WORK=$(mktemp -d)
cd "$WORK"
$W serve --listen 127.0.0.1:19443 > serve.log 2>&1 &
SERVER=$!
trap 'kill $SERVER; rm -rf "$WORK"' EXIT
for _ in $(seq 1 50); do [ -f wisp-data/bootstrap.json ] && curl -s --cacert wisp-data/tls/ca.pem --resolve localhost:19443:127.0.0.1 https://localhost:19443/readyz >/dev/null && break; sleep 0.2; done
python3 - <<'PY'
import json
apps=[{"name": f"service-{i:04}", "identifierUris": [f"api://service-{i:04}"], "appRoles": [{"value": "Data.Read"}],
       "federatedCredentials": [{"name": "deploy", "github": {"repository": f"acme/service-{i:04}", "environment": "production"}},
                                {"name": "k8s", "kubernetes": {"issuer": "https://oidc.example.com/c1", "namespace": "ns", "serviceAccount": f"sa-{i}"}}]}
      for i in range(1000)]
json.dump({"apiVersion": "wisp/v1", "applications": apps, "managedIdentities": [{"name": f"mi-{i}"} for i in range(50)]}, open("big.json","w"))
PY
start=$(date +%s.%N); $W apply -f big.json > /dev/null; end=$(date +%s.%N)
echo "apply of 1000 apps + 2000 FICs + 50 MIs: $(python3 -c "print(round($end-$start,2))") s (CLI wall time, plan + apply)"
start=$(date +%s.%N); $W apply -f big.json --dry-run > /dev/null; end=$(date +%s.%N)
echo "re-plan (no changes): $(python3 -c "print(round($end-$start,2))") s"
T=$(python3 -c 'import json;print(json.load(open("wisp-data/bootstrap.json"))["tenant_id"])')
C=$(python3 -c 'import json;print(json.load(open("wisp-data/bootstrap.json"))["admin_client_id"])')
S=$(python3 -c 'import json;print(json.load(open("wisp-data/bootstrap.json"))["admin_client_secret"])')
CURL="curl -s --cacert wisp-data/tls/ca.pem --resolve localhost:19443:127.0.0.1"
$CURL -c jar -d "tenant=$T&client_id=$C&client_secret=$S" https://localhost:19443/console/signin -o /dev/null
ID=$($CURL -b jar "https://localhost:19443/console/applications?q=service-0500" | grep -o '/console/applications/[0-9a-f-]\{36\}' | head -1)
for path in /console/applications "/console/applications?q=service-05" $ID $ID/credentials $ID/credentials/federated/new /console/enterprise-applications /console/identities /console/resources /console/sign-ins; do
  times=$(for i in 1 2 3 4 5 6 7; do $CURL -b jar -o /dev/null -w '%{http_code} %{time_pretransfer} %{time_starttransfer}\n' "https://localhost:19443$path"; done \
    | awk '{printf "%.1f %s\n", ($3-$2)*1000, $1}' | sort -n)
  median=$(echo "$times" | sed -n 4p)
  echo "$path: median ${median% *} ms (status ${median#* }) of 7"
done
