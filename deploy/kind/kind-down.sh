#!/usr/bin/env bash
# Deletes the kind cluster and, with --purge, the emulator's state and the
# generated keys on the host.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

need "$KIND"
log "deleting kind cluster $KIND_CLUSTER"
"$KIND" delete cluster --name "$KIND_CLUSTER"
if [ "${1:-}" = "--purge" ]; then
	log "removing $RDS_CSI_KIND_STATE"
	# Backing files are owned by the emulator's uid; this may need sudo.
	rm -rf -- "$RDS_CSI_KIND_STATE"
fi
