#!/usr/bin/env bash
# Brings up, by hand, what the kubelet lane (issue 21) needs and reports how far it
# gets on this machine: etcd, kube-apiserver, containerd with its own
# root/state/socket, locally built pause and busybox images imported into it, one
# kubelet registered against the apiserver, and a pod. It is the probe the lane's
# README section was written from, not a test: it asserts nothing beyond "this
# step came up", prints each step's outcome, and leaves every log in $DIR/logs.
#
#   hack/e2e/kubelet-lane.sh up       # start everything; prints what came up
#   hack/e2e/kubelet-lane.sh runtime  # only containerd, the images and the CRI probe
#   hack/e2e/kubelet-lane.sh down     # stop what `up` started (by recorded pid)
#
# DIR defaults to /tmp/rds-csi-kubelet-lane. Needs root (cgroups, mounts, netns).
# Binaries come from `RDS_CSI_E2E_KUBELET=1 hack/e2e/tools.sh`.
set -euo pipefail

DIR=${DIR:-/tmp/rds-csi-kubelet-lane}
NODE=${NODE:-lane-node-1}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOGS=$DIR/logs
PIDS=$DIR/pids

log() { echo "kubelet-lane: $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}

# start NAME CMD...: runs CMD in the background with its output in $LOGS/NAME.log
# and records its pid, so that `down` ends exactly the processes `up` started.
start() {
	local name=$1
	shift
	"$@" >"$LOGS/$name.log" 2>&1 &
	echo "$!" >"$PIDS/$name"
	log "started $name (pid $!)"
}

# wait_until SECONDS WHAT CMD...: polls CMD once a second.
wait_until() {
	local n=$1 what=$2
	shift 2
	local i
	for ((i = 0; i < n; i++)); do
		if "$@" >/dev/null 2>&1; then
			log "ok: $what"
			return 0
		fi
		sleep 1
	done
	log "not after ${n}s: $what"
	return 1
}

down() {
	local f pid
	# Containers outlive the kubelet and containerd (their shims are not
	# containerd's children): end them through containerd while it still runs.
	local sock=$DIR/containerd/containerd.sock t
	if [ -S "$sock" ] && command -v ctr >/dev/null; then
		local ctr=(ctr --address "$sock" --namespace k8s.io)
		[ -e "$PIDS/kubelet-$NODE" ] && kill "$(cat "$PIDS/kubelet-$NODE")" 2>/dev/null && rm -f "$PIDS/kubelet-$NODE"
		for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
		sleep 1
		for t in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks delete "$t" >/dev/null 2>&1 || true; done
	fi
	local stopped=()
	for f in "$PIDS"/*; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		if kill "$pid" 2>/dev/null; then
			log "stopped $(basename "$f") (pid $pid)"
			stopped+=("$pid")
		fi
		rm -f "$f"
	done
	# kube-apiserver drains for several seconds after SIGTERM; what is still
	# there after 30 s gets SIGKILL, so that a following `up` finds free ports.
	local i
	for pid in "${stopped[@]}"; do
		for ((i = 0; i < 30; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	# What the kubelet and containerd leave mounted under the lane's directory.
	if [ -d "$DIR" ]; then
		{ grep -o " $DIR/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		while grep -q " $DIR " /proc/self/mounts; do umount -l "$DIR"; done
	fi
	# The CNI bridge and the cgroups the lane created outlive their processes.
	ip link del rdscsilane0 2>/dev/null || true
	local h
	for h in /sys/fs/cgroup/*/rds-csi-lane-*; do
		if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
	done
}

# pki: a CA, the apiserver's serving certificate, the service-account key and a
# client certificate (with kubeconfig) for each identity.
pki() {
	local p=$DIR/pki
	mkdir -p "$p"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=rds-csi-kubelet-lane-ca -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	client apiserver kube-apiserver "" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
	client admin lane-admin system:masters
	client kcm system:kube-controller-manager ""
	client "kubelet-$NODE" "system:node:$NODE" system:nodes "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
}

# client NAME CN ORG [EXTENSIONS]
client() {
	local p=$DIR/pki name=$1 cn=$2 org=$3 ext=${4:-extendedKeyUsage=clientAuth}
	local subj="/CN=$cn"
	[ -n "$org" ] && subj="/O=$org$subj"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subj" \
		-keyout "$p/$name.key" -out "$p/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$p/$name.ext"
	openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
		-days 2 -extfile "$p/$name.ext" -out "$p/$name.crt" 2>/dev/null
	cat >"$p/$name.kubeconfig" <<-EOF
	apiVersion: v1
	kind: Config
	clusters: [{name: lane, cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$p/ca.crt"}}]
	users: [{name: $name, user: {client-certificate: "$p/$name.crt", client-key: "$p/$name.key"}}]
	contexts: [{name: lane, context: {cluster: lane, user: $name}}]
	current-context: lane
	EOF
}

# oci_image NAME TAG ROOTFS CMD...: an OCI image layout archive of ROOTFS (one
# layer) that `ctr images import` reads; built here, nothing is pulled.
oci_image() {
	local name=$1 tag=$2 rootfs=$3
	shift 3
	local out=$DIR/images/$name
	rm -rf "$out"
	mkdir -p "$out/blobs/sha256"
	tar -C "$rootfs" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out/layer.tar" .
	local diffid
	diffid=$(sha256sum "$out/layer.tar" | cut -d' ' -f1)
	gzip -n -c "$out/layer.tar" >"$out/layer.tar.gz"
	local layer lsize
	layer=$(sha256sum "$out/layer.tar.gz" | cut -d' ' -f1)
	lsize=$(stat -c %s "$out/layer.tar.gz")
	mv "$out/layer.tar.gz" "$out/blobs/sha256/$layer"
	rm "$out/layer.tar"
	local cmd="" a
	for a in "$@"; do cmd="$cmd${cmd:+,}\"$a\""; done
	printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":[%s]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$cmd" "$diffid" >"$out/config.json"
	local config csize
	config=$(sha256sum "$out/config.json" | cut -d' ' -f1)
	csize=$(stat -c %s "$out/config.json")
	mv "$out/config.json" "$out/blobs/sha256/$config"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
		"$config" "$csize" "$layer" "$lsize" >"$out/manifest.json"
	local manifest msize
	manifest=$(sha256sum "$out/manifest.json" | cut -d' ' -f1)
	msize=$(stat -c %s "$out/manifest.json")
	mv "$out/manifest.json" "$out/blobs/sha256/$manifest"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$manifest" "$msize" "$tag" "${tag##*:}" >"$out/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
	tar -C "$out" -cf "$DIR/images/$name.tar" oci-layout index.json blobs
}

# build_images: $DIR/images/{pause,busybox}.tar from Debian's static binaries.
build_images() {
	local r=$DIR/images/rootfs-pause
	rm -rf "$r" && mkdir -p "$r"
	cp "$E2E_CATATONIT" "$r/catatonit"
	oci_image pause localhost/rds-csi-lane/pause:1 "$r" /catatonit -P
	r=$DIR/images/rootfs-busybox
	rm -rf "$r" && mkdir -p "$r/bin" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/etc"
	cp "$E2E_BUSYBOX" "$r/bin/busybox"
	local a
	for a in sh dd sha256sum sleep cat ls mount df stat id touch sync blockdev grep awk; do ln -s busybox "$r/bin/$a"; done
	oci_image busybox localhost/rds-csi-lane/busybox:1 "$r" /bin/sh
}

images() {
	build_images
	local ctr=("$E2E_CTR" --address "$DIR/containerd/containerd.sock" --namespace k8s.io)
	"${ctr[@]}" images import "$DIR/images/pause.tar" >&2 || die "ctr images import pause"
	"${ctr[@]}" images import "$DIR/images/busybox.tar" >&2 || die "ctr images import busybox"
	"${ctr[@]}" images ls -q >&2
}

containerd_config() {
	local c=$DIR/containerd
	mkdir -p "$c/root" "$c/state" "$DIR/cni/net.d"
	cat >"$c/config.toml" <<-EOF
	version = 2
	root = "$c/root"
	state = "$c/state"
	[grpc]
	  address = "$c/containerd.sock"
	[ttrpc]
	  address = "$c/containerd.sock.ttrpc"
	[debug]
	  level = "info"
	[plugins."io.containerd.grpc.v1.cri"]
	  sandbox_image = "localhost/rds-csi-lane/pause:1"
	  # No CAP_SYS_RESOURCE here: lowering an oom_score_adj (the pause
	  # container's -998) fails with EACCES; clamp to containerd's own.
	  restrict_oom_score_adj = true
	  disable_apparmor = true
	  [plugins."io.containerd.grpc.v1.cri".containerd]
	    snapshotter = "overlayfs"
	    default_runtime_name = "runc"
	    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
	      runtime_type = "io.containerd.runc.v2"
	      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
	        BinaryName = "$E2E_RUNC"
	        SystemdCgroup = false
	  [plugins."io.containerd.grpc.v1.cri".cni]
	    bin_dir = "$E2E_CNI_BIN_DIR"
	    conf_dir = "$DIR/cni/net.d"
	EOF
	# A bridge on this machine only, no masquerade, no route off the host:
	# pods reach each other and the host, nothing else.
	cat >"$DIR/cni/net.d/10-lane.conflist" <<-EOF
	{"cniVersion": "0.4.0", "name": "rds-csi-lane", "plugins": [
	  {"type": "bridge", "bridge": "rdscsilane0", "isGateway": true, "ipMasq": false,
	   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.77.0/24"}]],
	            "dataDir": "$DIR/cni/ipam"}},
	  {"type": "loopback"}]}
	EOF
}

kubelet_config() {
	local k=$DIR/kubelet/$NODE
	mkdir -p "$k/root" "$k/certs"
	cat >"$k/config.yaml" <<-EOF
	apiVersion: kubelet.config.k8s.io/v1beta1
	kind: KubeletConfiguration
	# This machine mounts cgroup v1 controllers (hybrid; only an empty
	# cgroup2 at /sys/fs/cgroup/unified).
	failCgroupV1: false
	cgroupDriver: cgroupfs
	cgroupRoot: /rds-csi-lane-$NODE
	containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
	address: 127.0.0.1
	port: $KUBELET_PORT
	readOnlyPort: 0
	healthzBindAddress: 127.0.0.1
	healthzPort: $KUBELET_HEALTHZ_PORT
	tlsCertFile: $DIR/pki/kubelet-$NODE.crt
	tlsPrivateKeyFile: $DIR/pki/kubelet-$NODE.key
	authentication:
	  anonymous: {enabled: false}
	  webhook: {enabled: false}
	  x509: {clientCAFile: $DIR/pki/ca.crt}
	authorization: {mode: AlwaysAllow}
	failSwapOn: false
	# The machine's disk is shared: do not evict on its fill level, and never
	# garbage-collect the locally imported images (they cannot be pulled back).
	evictionHard: {}
	imageGCHighThresholdPercent: 100
	imageGCLowThresholdPercent: 99
	enforceNodeAllocatable: []
	protectKernelDefaults: false
	makeIPTablesUtilChains: false
	resolvConf: ""
	serializeImagePulls: false
	nodeStatusUpdateFrequency: 2s
	syncFrequency: 5s
	fileCheckFrequency: 5s
	podLogsDir: $k/pod-logs
	EOF
}

# fresh: stops what a previous `up` left and starts from an empty $DIR.
fresh() {
	[ "$(id -u)" = 0 ] || die "needs root"
	down
	rm -rf "$DIR"
	mkdir -p "$LOGS" "$PIDS" "$DIR/bin"
}

# runtime_up: containerd with its own root, state and socket, the images, and
# the CRI calls the kubelet makes run by criprobe, before any kubelet: a failure
# here is containerd's or runc's, not the kubelet's.
runtime_up() {
	containerd_config
	start containerd "$E2E_CONTAINERD" --config "$DIR/containerd/config.toml"
	wait_until 30 "containerd answers" "$E2E_CTR" --address "$DIR/containerd/containerd.sock" version ||
		die "containerd"
	images
	(cd "$HERE/criprobe" && nice -n 19 go build -mod=readonly -o "$DIR/bin/criprobe" .) || die "go build hack/e2e/criprobe"
	mkdir -p "$DIR/criprobe-logs"
	"$DIR/bin/criprobe" "$DIR/containerd/containerd.sock" "$DIR/criprobe-logs" >&2 || die "CRI probe against containerd"
	log "ok: CRI pod sandbox and container through containerd"
}

# runtime: only the runtime half, with Debian's binaries from PATH (what
# `RDS_CSI_E2E_KUBELET=1 tools.sh` installs), so that it runs before the
# Kubernetes builds are done.
runtime() {
	fresh
	local b
	for b in containerd ctr runc catatonit busybox; do
		command -v "$b" >/dev/null || die "$b not found: RDS_CSI_E2E_KUBELET=1 hack/e2e/tools.sh installs it"
	done
	export E2E_CONTAINERD E2E_CTR E2E_RUNC E2E_CATATONIT E2E_BUSYBOX E2E_CNI_BIN_DIR=/usr/lib/cni
	E2E_CONTAINERD=$(command -v containerd) E2E_CTR=$(command -v ctr) E2E_RUNC=$(command -v runc)
	E2E_CATATONIT=$(command -v catatonit) E2E_BUSYBOX=$(command -v busybox)
	log "$("$E2E_CONTAINERD" --version); $("$E2E_RUNC" --version | head -1)"
	runtime_up
}

up() {
	fresh
	local vars
	vars=$(RDS_CSI_E2E_KUBELET=1 nice -n 19 bash "$HERE/tools.sh") || die "hack/e2e/tools.sh"
	eval "$(printf '%s\n' "$vars" | sed 's/^\(E2E_[A-Z_]*\)=\(.*\)$/export \1="\2"/')"
	log "versions: $E2E_VERSIONS; kubelet $("$E2E_KUBELET" --version 2>&1); $("$E2E_CONTAINERD" --version); $("$E2E_RUNC" --version | head -1)"

	API_PORT=${API_PORT:-16443}
	KUBELET_PORT=${KUBELET_PORT:-16250}
	KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-16248}
	pki

	start etcd "$E2E_ETCD" --name=lane --data-dir="$DIR/etcd" \
		--listen-client-urls=http://127.0.0.1:16379 --advertise-client-urls=http://127.0.0.1:16379 \
		--listen-peer-urls=http://127.0.0.1:16380 --initial-advertise-peer-urls=http://127.0.0.1:16380 \
		--initial-cluster=lane=http://127.0.0.1:16380 --log-level=warn
	wait_until 30 "etcd /health" curl -fsS http://127.0.0.1:16379/health || die "etcd"

	start kube-apiserver "$E2E_KUBE_APISERVER" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
		--secure-port="$API_PORT" --etcd-servers=http://127.0.0.1:16379 \
		--tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
		--client-ca-file="$DIR/pki/ca.crt" \
		--kubelet-client-certificate="$DIR/pki/apiserver.crt" --kubelet-client-key="$DIR/pki/apiserver.key" \
		--kubelet-certificate-authority="$DIR/pki/ca.crt" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$DIR/pki/sa.key" --service-account-signing-key-file="$DIR/pki/sa.key" \
		--service-cluster-ip-range=10.0.0.0/24 --authorization-mode=Node,RBAC \
		--enable-admission-plugins=NodeRestriction --allow-privileged=true \
		--endpoint-reconciler-type=none --profiling=false --v=1
	local kc=("$E2E_KUBECTL" --kubeconfig "$DIR/pki/admin.kubeconfig")
	wait_until 120 "kube-apiserver /readyz" "${kc[@]}" get --raw /readyz || die "kube-apiserver"

	runtime_up

	kubelet_config
	# cgroupRoot must exist in every v1 hierarchy before the kubelet starts.
	local h
	for h in /sys/fs/cgroup/*/; do
		[ "$h" = /sys/fs/cgroup/unified/ ] && continue
		mkdir -p "$h/rds-csi-lane-$NODE"
	done
	# The kubelet sets machine-wide sysctls at start (vm.overcommit_memory=1,
	# kernel.panic=10, kernel.panic_on_oops=1, ...; protectKernelDefaults: true
	# only turns a difference into a start failure). On a shared machine those
	# are not the lane's to change, so it runs in its own mount namespace with
	# those files bind-mounted over by copies; everything under $DIR stays one
	# shared peer group, so the mounts the kubelet, containerd and the plugin
	# make there are seen by all three.
	mount --bind "$DIR" "$DIR"
	mount --make-rshared "$DIR"
	mkdir -p "$DIR/kubelet/$NODE/sysctl"
	# --node-ip is not set: the kubelet refuses a loopback node IP ("nodeIP
	# can't be loopback address"), so the Node records the machine's own
	# address. Nothing dials it: the kubelet listens on 127.0.0.1 only and the
	# probe reads container logs from podLogsDir, not through the apiserver.
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	start "kubelet-$NODE" unshare --mount --propagation unchanged sh -c '
		set -e
		d=$1
		shift
		for f in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops \
			kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
			c=$d/$(echo "$f" | tr / .)
			cat "/proc/sys/$f" >"$c"
			mount --bind "$c" "/proc/sys/$f"
		done
		exec "$@"' sh "$DIR/kubelet/$NODE/sysctl" \
		"$E2E_KUBELET" --config="$DIR/kubelet/$NODE/config.yaml" \
		--kubeconfig="$DIR/pki/kubelet-$NODE.kubeconfig" \
		--root-dir="$DIR/kubelet/$NODE/root" --cert-dir="$DIR/kubelet/$NODE/certs" \
		--hostname-override="$NODE" --v=2
	wait_until 120 "node $NODE registered" "${kc[@]}" get node "$NODE" || die "kubelet (see $LOGS/kubelet-$NODE.log)"
	if ! wait_until 120 "node $NODE Ready" "${kc[@]}" wait --for=condition=Ready --timeout=1s node "$NODE"; then
		"${kc[@]}" get node "$NODE" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2
		die "node not Ready"
	fi

	# No kube-controller-manager runs here, so nothing creates the namespace's
	# default ServiceAccount, without which admission rejects every pod.
	"${kc[@]}" create serviceaccount default -n default >&2 || die "create ServiceAccount default/default"
	"${kc[@]}" apply -f - >&2 <<-EOF
	apiVersion: v1
	kind: Pod
	metadata: {name: lane-probe, namespace: default}
	spec:
	  nodeName: $NODE
	  restartPolicy: Never
	  automountServiceAccountToken: false
	  containers:
	  - name: probe
	    image: localhost/rds-csi-lane/busybox:1
	    imagePullPolicy: Never
	    command: [/bin/sh, -c, 'dd if=/dev/zero of=/tmp/x bs=1M count=4 2>/dev/null && sha256sum /tmp/x && id']
	EOF
	if wait_until 120 "pod lane-probe Succeeded" sh -c "'${kc[0]}' --kubeconfig '$DIR/pki/admin.kubeconfig' get pod lane-probe -o jsonpath='{.status.phase}' | grep -qx Succeeded"; then
		cat "$DIR/kubelet/$NODE/pod-logs"/default_lane-probe_*/probe/*.log >&2
	else
		"${kc[@]}" describe pod lane-probe >&2 || true
		die "pod did not run"
	fi
	plugin
	log "up: kubeconfig $DIR/pki/admin.kubeconfig"
}

# plugin: the rds-csi node plugin and node-driver-registrar as processes next to
# the kubelet, the way a DaemonSet's two containers would sit; the kubelet's
# plugin watcher must find the registrar's socket, call NodeGetInfo and record
# the driver in the CSINode object.
plugin() {
	local root=$DIR/kubelet/$NODE/root name=rds.csi.mikrotik.com
	mkdir -p "$root/plugins/$name" "$DIR/emulator-state"
	(cd "$HERE/../.." && nice -n 19 go build -o "$DIR/bin/rds-csi" ./cmd/rds-csi) || die "go build ./cmd/rds-csi"
	start "rds-csi-node-$NODE" "$DIR/bin/rds-csi" --mode=node --node-id="$NODE" \
		--endpoint="unix://$root/plugins/$name/csi.sock" \
		--data-plane=loop --loop-backing-dir="$DIR/emulator-state" --kubelet-dir="$root" \
		--node-state-dir="$root/plugins/$name/volumes" --v=4
	wait_until 30 "node plugin socket" test -S "$root/plugins/$name/csi.sock" || die "rds-csi node plugin"
	start "node-driver-registrar-$NODE" "$E2E_NODE_DRIVER_REGISTRAR" \
		--csi-address="$root/plugins/$name/csi.sock" \
		--kubelet-registration-path="$root/plugins/$name/csi.sock" \
		--plugin-registration-path="$root/plugins_registry" --v=4
	local kc=("$E2E_KUBECTL" --kubeconfig "$DIR/pki/admin.kubeconfig")
	if wait_until 60 "CSINode $NODE lists $name" sh -c "'${kc[0]}' --kubeconfig '$DIR/pki/admin.kubeconfig' get csinode '$NODE' -o jsonpath='{.spec.drivers[*].name}' | grep -qw '$name'"; then
		"${kc[@]}" get csinode "$NODE" -o yaml >&2
	else
		die "registration (see $LOGS/node-driver-registrar-$NODE.log and $LOGS/kubelet-$NODE.log)"
	fi
}

# clean: what a killed run of the Go lane (e2e/, tag e2ekubelet) left behind,
# for every /tmp/rds-csi-e2e-*/ whose test binary (its pid file) is dead and
# that has a lane/: the processes in its pods' cgroups (rds-csi-e2ek-<pid>-*),
# the containerd shims started for its sockets, its mounts, its loop devices,
# the cgroups, and the lane's bridges. Live runs are not touched.
clean() {
	local d pid p h m any=0
	for d in "${TMPDIR:-/tmp}"/rds-csi-e2e-*/; do
		d=${d%/}
		{ [ -f "$d/pid" ] && [ -d "$d/lane" ]; } || continue
		pid=$(cat "$d/pid")
		kill -0 "$pid" 2>/dev/null && continue
		any=1
		log "cleaning the dead lane run $d (pid $pid)"
		for h in /sys/fs/cgroup/*/"rds-csi-e2ek-$pid-"*; do
			[ -d "$h" ] || continue
			find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
		done
		for p in /proc/[0-9]*; do
			if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^/usr/bin/containerd-shim-runc-v2 .*$d/lane/"; then
				kill -KILL "${p#/proc/}" 2>/dev/null || true
			fi
		done
		{ grep -o " $d/[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
		for p in /sys/block/loop*/loop/backing_file; do
			[ -f "$p" ] || continue
			case $(cat "$p") in "$d"/*) losetup -d "/dev/$(basename "$(dirname "$(dirname "$p")")")" 2>/dev/null || true ;; esac
		done
		sleep 1
		for h in /sys/fs/cgroup/*/"rds-csi-e2ek-$pid-"*; do
			if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
		done
		rm -rf "$d/lane" 2>/dev/null || true
	done
	# One lane runs at a time (make e2e-kubelet holds a lock): its bridges go
	# with any dead run.
	if [ "$any" = 1 ]; then
		for p in 1 2 3; do ip link del "rdscsie2ek$p" 2>/dev/null || true; done
	fi
	return 0
}

# check: whether node-driver-registrar can be had here (a complete cache entry,
# or a checkout in RDS_CSI_REGISTRAR_SRC to build it from); says why not and
# fails otherwise. make e2e-kubelet and .ci/run ask before they start.
check() {
	local cache=${RDS_CSI_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rds-csi/e2e}
	local v=${REGISTRAR_VERSION:-v2.17.0}
	[ -f "$cache/node-driver-registrar-$v/.complete" ] && return 0
	[ -n "${RDS_CSI_REGISTRAR_SRC:-}" ] && [ -f "$RDS_CSI_REGISTRAR_SRC/go.mod" ] && return 0
	echo "node-driver-registrar $v cannot be built: RDS_CSI_REGISTRAR_SRC is not a checkout of its $v tag and $cache/node-driver-registrar-$v is not complete (the module proxy refuses the module; see hack/e2e/README.md)" >&2
	return 3
}

case ${1:-} in
up) up ;;
check) check ;;
clean) clean ;;
images)
	# Only the two image archives, for the Go lane (e2e/, tag e2ekubelet),
	# which imports them into each node's containerd itself.
	{ [ -n "${E2E_CATATONIT:-}" ] && [ -n "${E2E_BUSYBOX:-}" ]; } || die "E2E_CATATONIT and E2E_BUSYBOX: run under RDS_CSI_E2E_KUBELET=1 hack/e2e/tools.sh's variables"
	mkdir -p "$DIR/images"
	build_images
	;;
runtime) runtime ;;
down) down ;;
*)
	echo "usage: $0 up|runtime|down|images|check|clean" >&2
	exit 2
	;;
esac
