#!/usr/bin/env bash
# Builds (once) the real Kubernetes control plane and CSI sidecars that `make e2e`
# runs against, and prints KEY=path lines for the e2e tests on stdout.
#
# Every binary is built from the Go module proxy into a cache directory outside the
# repository, keyed by component and version:
#
#   ${RDS_CSI_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rds-csi/e2e}/<component>-<version>/
#
# A second run finds them there and returns in well under a second. The script is
# idempotent and safe to run twice at once (one flock per component; each build
# lands in a temporary directory renamed into place only when complete).
#
# etcd comes from Debian's etcd-server package (installed with apt-get if missing).
#
# Versions can be overridden from the environment; the defaults are the newest
# patch releases matching the client libraries of the root module (k8s.io/* v0.37).
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
PROVISIONER_VERSION=${PROVISIONER_VERSION:-v6.4.1}
ATTACHER_VERSION=${ATTACHER_VERSION:-v4.13.1}
RESIZER_VERSION=${RESIZER_VERSION:-v2.3.1}
SNAPSHOTTER_VERSION=${SNAPSHOTTER_VERSION:-v8.7.0}
# The kubelet lane (RDS_CSI_E2E_KUBELET=1) also builds the kubelet (KUBE_VERSION)
# and node-driver-registrar, and installs containerd and runc from Debian.
REGISTRAR_VERSION=${REGISTRAR_VERSION:-v2.17.0}


CACHE=${RDS_CSI_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rds-csi/e2e}
mkdir -p "$CACHE"

export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
export GOWORK=off

log() { echo "tools.sh: $*" >&2; }

# build_component NAME VERSION FUNCTION: runs FUNCTION OUTDIR WORKDIR under a lock
# unless $CACHE/NAME-VERSION/ is already complete.
build_component() {
	local name=$1 version=$2 fn=$3
	local dest="$CACHE/$name-$version"
	if [ -f "$dest/.complete" ]; then
		return 0
	fi
	exec {lockfd}>"$CACHE/.$name-$version.lock"
	flock "$lockfd"
	if [ -f "$dest/.complete" ]; then # built by a concurrent run while we waited
		exec {lockfd}>&-
		return 0
	fi
	local start=$SECONDS
	log "building $name $version (cold build; this can take minutes)"
	local tmp work
	tmp=$(mktemp -d "$CACHE/.$name-$version.tmp.XXXXXX")
	work=$(mktemp -d "${TMPDIR:-/tmp}/rds-csi-e2e-build.XXXXXX")
	if ! "$fn" "$tmp" "$work" >&2; then
		rm -rf "$tmp" "$work"
		exec {lockfd}>&-
		log "building $name $version failed"
		return 1
	fi
	touch "$tmp/.complete"
	rm -rf "$dest"
	mv "$tmp" "$dest"
	rm -rf "$work"
	exec {lockfd}>&-
	log "built $name $version in $((SECONDS - start))s"
}

# moddir MODULE@VERSION: the module's extracted source directory (downloads it).
moddir() {
	(cd "$2" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

# kube_cmds OUT WORK CMD...: commands (k8s.io/kubernetes/cmd/CMD) built in a
# throwaway module whose replace directives point every staging module
# (./staging/src/k8s.io/X in kubernetes' own go.mod) at the published k8s.io/X
# v0.<minor>.<patch> that matches.
kube_cmds() {
	local out=$1 work=$2
	shift 2
	local cmds=("$@")
	local staging=v0.${KUBE_VERSION#v1.}
	cd "$work"
	go mod init rds-csi-e2e-kube >/dev/null 2>&1
	local gomod
	gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -n "$gomod" ] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; return 1; }
	local goline
	goline=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
	go mod edit -go="$goline"
	local m
	while IFS= read -r m; do
		# Staging modules not published at this version (sample code, new modules)
		# are left out; the build fails loudly if one of them is actually needed.
		if go mod download "$m@$staging" >/dev/null 2>&1; then
			go mod edit -replace="$m=$m@$staging"
		else
			log "  (no $m@$staging on the proxy; not replaced)"
		fi
	done < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")
	go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
	local c targets=()
	for c in "${cmds[@]}"; do targets+=("k8s.io/kubernetes/cmd/$c"); done
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for c in "${targets[@]}"; do printf '\t_ "%s"\n' "$c"; done
		printf ')\n'
	} >tools.go
	go mod tidy -e >/dev/null 2>&1 || true
	local minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	local ld="-s -w"
	local p
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld="$ld -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	go build -trimpath -ldflags "$ld" -o "$out/" "${targets[@]}"
}

# kube: the control plane the e2e lane runs, and kubectl.
build_kube() { kube_cmds "$1" "$2" kube-apiserver kube-controller-manager kubectl; }

# kubelet: the same k8s.io/kubernetes version as the control plane, in its own
# cache entry so that adding it did not invalidate an existing kube-<version>/.
# It is built with CGO_ENABLED=0 like the rest (upstream ships it static too).
build_kubelet() { kube_cmds "$1" "$2" kubelet; }

# sidecar MODULE VERSION "PACKAGE..." OUT WORK: kubernetes-csi commands built
# with the dependency versions (and replace directives) of their own go.mod.
build_sidecar() {
	local mod=$1 version=$2 pkgs=$3 out=$4 work=$5
	local pkg=${pkgs%% *}
	cd "$work"
	go mod init "rds-csi-e2e-$(basename "$pkg")" >/dev/null 2>&1
	local gomod
	gomod=$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -n "$gomod" ] || { log "cannot download $mod@$version"; return 1; }
	go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
	# Carry over non-local replace directives ("a => b vX" or "a vY => b vX").
	local line
	while IFS= read -r line; do
		go mod edit -replace="$line"
	done < <(awk '
		/^replace \(/ {inblk=1; next}
		inblk && /^\)/ {inblk=0; next}
		inblk || /^replace / {
			sub(/^replace /, ""); sub(/\/\/.*/, "")
			n = split($0, f, " ")
			if (n == 0) next
			for (i = 1; i <= n; i++) if (f[i] == "=>") a = i
			if (f[a+1] ~ /^\./) next
			lhs = f[1]; if (a == 3) lhs = lhs "@" f[2]
			rhs = f[a+1]; if (n > a+1) rhs = rhs "@" f[a+2]
			print lhs "=" rhs
		}' "$gomod")
	go mod edit -require="$mod@$version"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for p in $pkgs; do printf '\t_ "%s"\n' "$p"; done
		printf ')\n'
	} >tools.go
	go mod tidy -e >/dev/null 2>&1 || true
	# shellcheck disable=SC2086 # one argument per package
	go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/" $pkgs
}

build_provisioner() { build_sidecar github.com/kubernetes-csi/external-provisioner/v6 "$PROVISIONER_VERSION" github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner "$@"; }
build_attacher() { build_sidecar github.com/kubernetes-csi/external-attacher/v4 "$ATTACHER_VERSION" github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher "$@"; }
build_resizer() { build_sidecar github.com/kubernetes-csi/external-resizer/v2 "$RESIZER_VERSION" github.com/kubernetes-csi/external-resizer/v2/cmd/csi-resizer "$@"; }
# The snapshotter sidecar and the snapshot-controller (which turns VolumeSnapshots
# into VolumeSnapshotContents), from one module.
build_snapshotter() {
	build_sidecar github.com/kubernetes-csi/external-snapshotter/v8 "$SNAPSHOTTER_VERSION" \
		"github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller" \
		"$@" || return 1
	# The snapshot and group-snapshot CRDs live in the client module's source
	# (client/config/crd); the snapshot-controller waits for both.
	local dir
	dir=$(moddir "github.com/kubernetes-csi/external-snapshotter/client/v8@$SNAPSHOTTER_VERSION" "$2")
	if [ -n "$dir" ] && [ -d "$dir/config/crd" ]; then
		mkdir -p "$1/crd"
		cp "$dir"/config/crd/*snapshot.storage.k8s.io_*.yaml "$1/crd/"
		chmod u+w "$1"/crd/*.yaml
	else
		log "  (no snapshot CRDs found in external-snapshotter/client/v8@$SNAPSHOTTER_VERSION)"
	fi
}

# node-driver-registrar: the module proxy does not serve
# github.com/kubernetes-csi/node-driver-registrar (its v2 tags sit on a go.mod
# without /v2, so they are not valid module versions, and the proxy refuses the
# path outright: 403), and no other source is reachable from CI. So it is built
# from a checkout of the release tag that the caller provides in
# RDS_CSI_REGISTRAR_SRC (git clone -b $REGISTRAR_VERSION
# https://github.com/kubernetes-csi/node-driver-registrar); its dependencies
# come from the proxy at the versions of its own go.mod/go.sum. The project
# keeps no copy of another project's source.
build_registrar() {
	local out=$1 work=$2
	local src=${RDS_CSI_REGISTRAR_SRC:-}
	if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
		log "node-driver-registrar: set RDS_CSI_REGISTRAR_SRC to a checkout of its $REGISTRAR_VERSION tag (the module proxy refuses the module)"
		return 1
	fi
	# A copy, so that -mod=mod never rewrites the checkout's go.mod/go.sum.
	cp -r "$src/." "$work/"
	cd "$work"
	go build -trimpath -ldflags "-s -w -X main.version=$REGISTRAR_VERSION" -o "$out/" ./cmd/csi-node-driver-registrar
}

# apt_install PACKAGE...: Debian packages, installed once under a lock shared
# with every other run of this script (apt itself refuses concurrent installs).
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		log "not root: install Debian's ${missing[*]}"
		return 1
	fi
	log "installing ${missing[*]} from Debian"
	(flock 9
	 apt-get update -qq
	 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	) 9>"$CACHE/.apt.lock" >&2
}

# etcd: Debian's etcd-server.
ETCD=${ETCD:-$(command -v etcd || true)}
if [ -z "$ETCD" ]; then
	log "installing etcd-server from Debian"
	if [ "$(id -u)" != 0 ]; then
		log "etcd not found and not root: install Debian's etcd-server"
		exit 1
	fi
	(flock 9
	 command -v etcd >/dev/null || {
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
	 }) 9>"$CACHE/.apt.lock" >&2
	ETCD=$(command -v etcd)
fi

# Run the independent builds side by side: the go tool parallelises within a build,
# but a sidecar's link overlaps nicely with the big kube build. RDS_CSI_E2E_SERIAL=1
# builds one at a time.
pids=()
run() {
	if [ "${RDS_CSI_E2E_SERIAL:-}" = 1 ]; then "$@"; else "$@" & pids+=($!); fi
}
run build_component kube "$KUBE_VERSION" build_kube
run build_component csi-provisioner "$PROVISIONER_VERSION" build_provisioner
run build_component csi-attacher "$ATTACHER_VERSION" build_attacher
run build_component csi-resizer "$RESIZER_VERSION" build_resizer
run build_component external-snapshotter "$SNAPSHOTTER_VERSION" build_snapshotter
if [ "${RDS_CSI_E2E_KUBELET:-}" = 1 ]; then
	run build_component kubelet "$KUBE_VERSION" build_kubelet
	run build_component node-driver-registrar "$REGISTRAR_VERSION" build_registrar
fi
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
[ "$fail" = 0 ] || { log "a build failed"; exit 1; }
if [ "${RDS_CSI_E2E_KUBELET:-}" = 1 ]; then
	# containerd (Debian 12: 1.6.20; CRI v1, which the kubelet requires), runc,
	# the CNI plugins containerd's CRI needs before it reports the network ready
	# (bridge, host-local, loopback), and the static binaries the lane's images
	# are made of: catatonit (its -P mode is a pause process) and busybox (sh,
	# dd, sha256sum for test pods).
	apt_install containerd runc containernetworking-plugins catatonit busybox-static
fi

cat <<EOF
E2E_ETCD=$ETCD
E2E_KUBE_APISERVER=$CACHE/kube-$KUBE_VERSION/kube-apiserver
E2E_KUBE_CONTROLLER_MANAGER=$CACHE/kube-$KUBE_VERSION/kube-controller-manager
E2E_KUBECTL=$CACHE/kube-$KUBE_VERSION/kubectl
E2E_CSI_PROVISIONER=$CACHE/csi-provisioner-$PROVISIONER_VERSION/csi-provisioner
E2E_CSI_ATTACHER=$CACHE/csi-attacher-$ATTACHER_VERSION/csi-attacher
E2E_CSI_RESIZER=$CACHE/csi-resizer-$RESIZER_VERSION/csi-resizer
E2E_CSI_SNAPSHOTTER=$CACHE/external-snapshotter-$SNAPSHOTTER_VERSION/csi-snapshotter
E2E_SNAPSHOT_CONTROLLER=$CACHE/external-snapshotter-$SNAPSHOTTER_VERSION/snapshot-controller
E2E_SNAPSHOT_CRDS=$CACHE/external-snapshotter-$SNAPSHOTTER_VERSION/crd
EOF
lane_versions=
if [ "${RDS_CSI_E2E_KUBELET:-}" = 1 ]; then
	lane_versions=",kubelet=$KUBE_VERSION,registrar=$REGISTRAR_VERSION,containerd=$(dpkg-query -W -f='${Version}' containerd),runc=$(dpkg-query -W -f='${Version}' runc)"
	cat <<EOF
E2E_KUBELET=$CACHE/kubelet-$KUBE_VERSION/kubelet
E2E_NODE_DRIVER_REGISTRAR=$CACHE/node-driver-registrar-$REGISTRAR_VERSION/csi-node-driver-registrar
E2E_CONTAINERD=$(command -v containerd)
E2E_CONTAINERD_SHIM=$(command -v containerd-shim-runc-v2)
E2E_CTR=$(command -v ctr)
E2E_RUNC=$(command -v runc)
E2E_CATATONIT=$(command -v catatonit)
E2E_BUSYBOX=$(command -v busybox)
E2E_CNI_BIN_DIR=/usr/lib/cni
EOF
fi
cat <<EOF
E2E_VERSIONS=kube=$KUBE_VERSION,etcd=$("$ETCD" --version 2>/dev/null | sed -n 's/^etcd Version: //p'),provisioner=$PROVISIONER_VERSION,attacher=$ATTACHER_VERSION,resizer=$RESIZER_VERSION,snapshotter=$SNAPSHOTTER_VERSION$lane_versions
EOF
