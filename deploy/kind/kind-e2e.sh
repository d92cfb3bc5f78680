#!/usr/bin/env bash
# Smoke test on the kind cluster kind-up.sh made: a PVC and a pod write data;
# the pod moves to the other worker and reads it back; an RWX block volume is
# attached on both workers at once (the live-migration hand-off), then the
# source leaves.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

need "$KIND" "$KUBECTL"
ns=rds-csi-e2e
workers=()
while IFS= read -r n; do workers+=("$n"); done < <(kctl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
[ "${#workers[@]}" -ge 2 ] || die "need two worker nodes, found ${#workers[@]}"

cleanup() { kctl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
kctl create namespace "$ns" --dry-run=client -o yaml | kctl apply -f -

pod() { # name node claim command
	kctl -n "$ns" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  nodeName: $2
  restartPolicy: Never
  containers:
    - name: app
      image: registry.k8s.io/e2e-test-images/busybox:1.36.1-1
      command: ["sh", "-c", "$4"]
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {cpu: 100m, memory: 32Mi}
      volumeMounts:
        - name: data
          mountPath: /data
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: $3
YAML
}

log "filesystem volume: write on ${workers[0]}"
kctl -n "$ns" apply -f - <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: fs
spec:
  accessModes: ["ReadWriteOnce"]
  storageClassName: rds-csi-ext4
  resources:
    requests:
      storage: 1Gi
YAML
token="rds-csi-$(date +%s)"
pod writer "${workers[0]}" fs "echo $token > /data/token && sync"
kctl -n "$ns" wait pod/writer --for=jsonpath='{.status.phase}'=Succeeded --timeout=300s
kctl -n "$ns" delete pod writer --wait=true

log "filesystem volume: read on ${workers[1]} (the volume moved)"
pod reader "${workers[1]}" fs "cat /data/token"
kctl -n "$ns" wait pod/reader --for=jsonpath='{.status.phase}'=Succeeded --timeout=300s
got="$(kctl -n "$ns" logs reader)"
[ "$got" = "$token" ] || die "read back '$got', wrote '$token'"
kctl -n "$ns" delete pod reader --wait=true

log "RWX block volume on both workers (live-migration hand-off)"
kctl -n "$ns" apply -f - <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: block
spec:
  accessModes: ["ReadWriteMany"]
  volumeMode: Block
  storageClassName: rds-csi-block
  resources:
    requests:
      storage: 1Gi
YAML
for i in 0 1; do
	kctl -n "$ns" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: vm-$i
spec:
  nodeName: ${workers[$i]}
  containers:
    - name: app
      image: registry.k8s.io/e2e-test-images/busybox:1.36.1-1
      command: ["sh", "-c", "dd if=/dev/xvda of=/dev/null bs=4k count=1 && sleep 3600"]
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {cpu: 100m, memory: 32Mi}
      volumeDevices:
        - name: disk
          devicePath: /dev/xvda
  volumes:
    - name: disk
      persistentVolumeClaim:
        claimName: block
YAML
done
kctl -n "$ns" wait pod/vm-0 pod/vm-1 --for=condition=Ready --timeout=300s
log "the migration source leaves"
kctl -n "$ns" delete pod vm-0 --wait=true
kctl -n "$ns" delete pod vm-1 --wait=true
kctl -n "$ns" get events --field-selector reason=MigrationStarted -o name | grep -q . || log "note: no MigrationStarted event seen"
log "kind e2e passed"
