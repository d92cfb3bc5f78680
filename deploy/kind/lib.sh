#!/usr/bin/env bash
# Shared settings of the kind scripts. Sourced, not run.
# shellcheck shell=bash

# Paths and names; override from the environment.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIND_CLUSTER="${KIND_CLUSTER:-rds-csi}"
# Must match the extraMounts hostPath in kind-config.yaml.
RDS_CSI_KIND_STATE="${RDS_CSI_KIND_STATE:-/tmp/rds-csi-kind}"
NAMESPACE=rds-csi
IMAGE_REPO="${IMAGE_REPO:-ghcr.io/rds-csi/rds-csi}"
# The tag the manifests pin; the images are built locally and loaded into kind.
IMAGE_TAG="${IMAGE_TAG:-v0.1.0}"
KUBECTL="${KUBECTL:-kubectl}"
KIND="${KIND:-kind}"
DOCKER="${DOCKER:-docker}"
# Loop device nodes created in every kind node (kind nodes get a static /dev).
LOOP_DEVICES="${LOOP_DEVICES:-64}"

export REPO_ROOT KIND_CLUSTER RDS_CSI_KIND_STATE NAMESPACE IMAGE_REPO IMAGE_TAG KUBECTL KIND DOCKER LOOP_DEVICES

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "$c is required (see deploy/README.md, Install on kind)"
	done
}

kctl() { "$KUBECTL" --context "kind-$KIND_CLUSTER" "$@"; }
