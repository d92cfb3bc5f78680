#!/usr/bin/env bash
# Creates a kind cluster with rds-csi against the RouterOS emulator:
# builds the images, loads them into kind, generates the SSH keys (never
# committed), pins the emulator's host key, and applies the kind overlay.
# Needs docker, kind, kubectl and ssh-keygen. Idempotent: run it again to
# redeploy after a change.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

need "$DOCKER" "$KIND" "$KUBECTL" ssh-keygen

state="$RDS_CSI_KIND_STATE/emulator-state"
keys="$RDS_CSI_KIND_STATE/keys"
log "host directories under $RDS_CSI_KIND_STATE"
mkdir -p "$state" "$keys"
# The emulator runs as uid 65532 and the node plugins as root; the shared
# state directory must be writable by both. Test clusters only.
chmod 0777 "$state"
chmod 0700 "$keys"

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
	log "creating kind cluster $KIND_CLUSTER"
	"$KIND" create cluster --name "$KIND_CLUSTER" --config "$REPO_ROOT/kind-config.yaml" --wait 120s
fi

log "creating $LOOP_DEVICES loop device nodes in every kind node"
for node in $("$KIND" get nodes --name "$KIND_CLUSTER"); do
	# shellcheck disable=SC2016 # the script runs inside the node
	"$DOCKER" exec "$node" sh -c '
		[ -e /dev/loop-control ] || mknod /dev/loop-control c 10 237
		i=0
		while [ "$i" -lt "$1" ]; do
			[ -e "/dev/loop$i" ] || mknod "/dev/loop$i" b 7 "$i"
			i=$((i + 1))
		done' sh "$LOOP_DEVICES"
done

log "building $IMAGE_REPO:$IMAGE_TAG (node) and $IMAGE_REPO:$IMAGE_TAG-distroless"
"$DOCKER" build --target node --build-arg "VERSION=$IMAGE_TAG" -t "$IMAGE_REPO:$IMAGE_TAG" "$REPO_ROOT"
"$DOCKER" build --target distroless --build-arg "VERSION=$IMAGE_TAG" -t "$IMAGE_REPO:$IMAGE_TAG-distroless" "$REPO_ROOT"
"$KIND" load docker-image --name "$KIND_CLUSTER" "$IMAGE_REPO:$IMAGE_TAG" "$IMAGE_REPO:$IMAGE_TAG-distroless"

log "SSH keys in $keys"
[ -f "$keys/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C rds-csi -f "$keys/id_ed25519"
[ -f "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C rds-emulator -f "$keys/ssh_host_ed25519_key"
log "emulator host key $(ssh-keygen -lf "$keys/ssh_host_ed25519_key.pub")"

kctl apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $NAMESPACE
  labels:
    app.kubernetes.io/part-of: rds-csi
    pod-security.kubernetes.io/enforce: privileged
YAML

apply_generated() { kctl -n "$NAMESPACE" create "$@" --dry-run=client -o yaml | kctl apply -f -; }
# The driver's private key, the emulator's host key, the key the emulator
# accepts, and the pinned host key (its public half, known_hosts form).
apply_generated secret generic rds-csi-ssh-key --from-file=id_ed25519="$keys/id_ed25519"
apply_generated secret generic rds-emulator-host-key --from-file=ssh_host_ed25519_key="$keys/ssh_host_ed25519_key"
apply_generated configmap rds-emulator-authorized-keys --from-file=authorized_keys="$keys/id_ed25519.pub"
apply_generated configmap rds-csi-known-hosts --from-file=known_hosts="$keys/ssh_host_ed25519_key.pub"

log "applying deploy/kubernetes/overlays/kind"
kctl apply -k "$REPO_ROOT/deploy/kubernetes/overlays/kind"
kctl -n "$NAMESPACE" rollout restart statefulset/rds-emulator deployment/rds-csi-controller daemonset/rds-csi-node
kctl -n "$NAMESPACE" rollout status statefulset/rds-emulator --timeout=180s
kctl -n "$NAMESPACE" rollout status daemonset/rds-csi-node --timeout=180s
kctl -n "$NAMESPACE" rollout status deployment/rds-csi-controller --timeout=300s
log "ready: kubectl --context kind-$KIND_CLUSTER -n $NAMESPACE get pods"
