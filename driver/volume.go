package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/ownership"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// Slots are RDS's disk names. Volumes use "pvc-..." (external-provisioner's
// names, kept as they are so an operator can match a disk to its PV at a
// glance) or "vol-<hash>" for any other CSI name; snapshots use "snap-...".
// The prefixes are what ListVolumes and ListSnapshots filter on.
// Which disks are the driver's is decided by driver/ownership (slot shape and
// exact file path), never by these prefixes alone.
var pvcNameRE = regexp.MustCompile(`^pvc-[a-z0-9][a-z0-9-]{0,59}$`)

const volumeSlotListRE = `^(pvc|vol)-`

// volumeSlot derives the RDS slot for a CSI volume name. It is a pure function of
// the name, so a retried CreateVolume finds the disk the first attempt made.
func volumeSlot(name string) string {
	if pvcNameRE.MatchString(name) {
		return name
	}
	return "vol-" + shortHash(name, 32)
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// isVolumeID reports whether id could name a volume of this driver. IDs that
// cannot are answered without asking RDS (NOT_FOUND, or success for deletes).
func isVolumeID(id string) bool { return ownership.IsVolumeSlot(id) }

// Snapshot slots carry their lineage in the name, because a disk's name is the
// one thing RouterOS certainly stores and prints back:
//
//	snap-<16 hex: hash of the CSI snapshot name>-<creation unix seconds, base 36>-<source volume slot>

type snapshotID struct {
	nameHash string
	created  time.Time
	source   string
}

func (s snapshotID) slot() string {
	return "snap-" + s.nameHash + "-" + strconv.FormatInt(s.created.Unix(), 36) + "-" + s.source
}

func parseSnapshotID(id string) (snapshotID, bool) {
	hash, created, source, ok := ownership.SnapshotSlotParts(id)
	if !ok {
		return snapshotID{}, false
	}
	secs, err := strconv.ParseInt(created, 36, 64)
	if err != nil {
		return snapshotID{}, false
	}
	return snapshotID{nameHash: hash, created: time.Unix(secs, 0).UTC(), source: source}, true
}

// Sizes. RDS allocates whole files; requests are rounded up to a MiB so the size
// sent is exact and the size read back is never below what was asked.
const (
	allocationUnit    = rds.AllocationUnit
	defaultVolumeSize = 1 << 30
)

// capacityFor picks the size to create for a capacity range, or OUT_OF_RANGE.
func capacityFor(r *csi.CapacityRange) (int64, error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || lim < 0 {
		return 0, status.Error(codes.InvalidArgument, "capacity range: negative bytes")
	}
	if lim > 0 && req > lim {
		return 0, status.Errorf(codes.OutOfRange, "capacity range: required %d bytes exceeds the limit %d", req, lim)
	}
	if req > rds.MaxDiskSize {
		return 0, status.Errorf(codes.OutOfRange, "capacity range: required %d bytes is more than the %d an RDS disk can have", req, rds.MaxDiskSize)
	}
	size := req
	if size == 0 {
		size = defaultVolumeSize
		if lim > 0 && lim < size {
			size = lim
		}
	}
	size = roundUp(size) // cannot overflow: size <= MaxDiskSize
	if lim > 0 && size > lim {
		return 0, status.Errorf(codes.OutOfRange,
			"capacity range: %d bytes rounded up to the %d-byte allocation unit is %d, above the limit %d",
			req, allocationUnit, size, lim)
	}
	return size, nil
}

func roundUp(n int64) int64 { return (n + allocationUnit - 1) / allocationUnit * allocationUnit }

// fitsRange reports whether an existing size satisfies a capacity range.
func fitsRange(size int64, r *csi.CapacityRange) bool {
	if size < r.GetRequiredBytes() {
		return false
	}
	return r.GetLimitBytes() == 0 || size <= r.GetLimitBytes()
}

// StorageClass parameters. Keys are what users write in a StorageClass; the
// volume context carries the resolved values to ControllerPublish and the node.
const (
	paramBasePath       = "basePath"       // directory on RDS for the backing files, e.g. /storage-pool/k8s
	paramNVMeAddress    = "nvmeAddress"    // address the nodes connect NVMe/TCP to
	paramNVMePort       = "nvmePort"       // NVMe/TCP port (default 4420)
	paramFSType         = "fsType"         // ext4 (default) or xfs
	paramCtrlLossTmo    = "ctrlLossTmo"    // nvme connect --ctrl-loss-tmo, seconds (-1 = forever)
	paramReconnectDelay = "reconnectDelay" // nvme connect --reconnect-delay, seconds
	paramKeepAliveTmo   = "keepAliveTmo"   // nvme connect --keep-alive-tmo, seconds
	paramFastIOFailTmo  = "fastIoFailTmo"  // nvme connect --fast_io_fail_tmo, seconds (-1 = never fail fast)
	paramDataPlane      = "dataPlane"      // nvme or loop: how nodes attach this volume
	paramGracePeriod    = "gracePeriod"    // attachment grace period, a Go duration (30s)
	paramNQN            = "nqn"            // volume context only: the volume's NVMe qualified name
	paramFilePath       = "filePath"       // volume context only: the backing file on RDS (the loop data plane opens it)
	// csiParamPrefix marks parameters set by Kubernetes' sidecars rather than
	// the user (csi.storage.k8s.io/fstype, .../pvc/name, ...).
	csiParamPrefix = "csi.storage.k8s.io/"
	csiFSTypeKey   = "csi.storage.k8s.io/fstype"
)

// volumeParams are the resolved StorageClass parameters of one volume.
type volumeParams struct {
	basePath       string
	nvmeAddress    string
	nvmePort       int
	fsType         string
	ctrlLossTmo    string
	reconnectDelay string
	keepAliveTmo   string
	fastIOFailTmo  string
	dataPlane      string
	gracePeriod    time.Duration
}

var supportedFSTypes = map[string]bool{"ext4": true, "xfs": true}

// parseParams validates StorageClass parameters against the driver's defaults.
// An unknown key is INVALID_ARGUMENT naming it: a typo in a StorageClass should
// fail the first PVC loudly, not be silently ignored.
func (d *Driver) parseParams(params map[string]string) (volumeParams, error) {
	p := volumeParams{
		basePath:    d.opts.BasePath,
		nvmeAddress: d.opts.NVMeAddress,
		nvmePort:    d.opts.NVMePort,
		fsType:      "ext4",
		dataPlane:   d.opts.DefaultDataPlane,
		gracePeriod: d.opts.GracePeriod,
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		bad := func(why string) error {
			return status.Errorf(codes.InvalidArgument, "parameter %s=%q: %s", k, v, why)
		}
		switch k {
		case paramBasePath:
			if !d.owner.Allowed(v) {
				return p, bad("not one of the driver's allowed base paths " + strings.Join(d.owner.Bases(), ", "))
			}
			p.basePath = v
		case paramNVMeAddress, paramNVMePort, paramCtrlLossTmo, paramReconnectDelay, paramKeepAliveTmo, paramFastIOFailTmo, paramDataPlane:
			c, err := checkNodeParam(k, v)
			if err != nil {
				return p, bad(err.Error())
			}
			switch k {
			case paramNVMeAddress:
				p.nvmeAddress = c
			case paramNVMePort:
				p.nvmePort, _ = strconv.Atoi(c)
			case paramCtrlLossTmo:
				p.ctrlLossTmo = c
			case paramReconnectDelay:
				p.reconnectDelay = c
			case paramKeepAliveTmo:
				p.keepAliveTmo = c
			case paramFastIOFailTmo:
				p.fastIOFailTmo = c
			default:
				p.dataPlane = c
			}
		case paramFSType, csiFSTypeKey:
			if _, err := checkNodeParam(paramFSType, v); err != nil {
				return p, bad(err.Error())
			}
			if v != "" {
				p.fsType = v
			}
		case paramGracePeriod:
			g, err := time.ParseDuration(v)
			if err != nil || g < 0 {
				return p, bad("want a duration such as 30s")
			}
			p.gracePeriod = g
		default:
			if strings.HasPrefix(k, csiParamPrefix) {
				continue // set by the sidecars (PVC name, namespace, ...), not by users
			}
			return p, status.Errorf(codes.InvalidArgument, "unknown StorageClass parameter %q (known: %s)", k,
				strings.Join([]string{paramBasePath, paramNVMeAddress, paramNVMePort, paramFSType, paramCtrlLossTmo,
					paramReconnectDelay, paramKeepAliveTmo, paramFastIOFailTmo, paramDataPlane, paramGracePeriod}, ", "))
		}
	}
	if err := checkFailFast(p.ctrlLossTmo, p.fastIOFailTmo); err != nil {
		return p, status.Errorf(codes.InvalidArgument, "parameters %s and %s: %v", paramCtrlLossTmo, paramFastIOFailTmo, err)
	}
	if p.nvmeAddress == "" {
		return p, status.Error(codes.InvalidArgument, "no NVMe/TCP address: set the nvmeAddress parameter or --nvme-address")
	}
	return p, nil
}

// checkNodeParam validates one parameter the nodes act on and returns its
// canonical form. The same rules run at CreateVolume (StorageClass), at
// ControllerPublish (the volume context, which can be edited in the PV) and on
// the node, so a bad value fails the first PVC instead of the first mount.
func checkNodeParam(key, v string) (string, error) {
	switch key {
	case paramNVMeAddress:
		if err := dataplane.ValidateAddress(v); err != nil {
			return "", err
		}
		return v, nil
	case paramNVMePort:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != v {
			return "", errors.New("want a port number (1-65535)")
		}
		return v, nil
	case paramCtrlLossTmo:
		return dataplane.Seconds("ctrlLossTmo", v, dataplane.MinCtrlLossTmo)
	case paramReconnectDelay:
		return dataplane.Seconds("reconnectDelay", v, dataplane.MinReconnectDelay)
	case paramKeepAliveTmo:
		return dataplane.Seconds("keepAliveTmo", v, dataplane.MinKeepAliveTmo)
	case paramFastIOFailTmo:
		return dataplane.Seconds("fastIoFailTmo", v, dataplane.MinFastIOFailTmo)
	case paramDataPlane:
		if v != "nvme" && v != "loop" {
			return "", errors.New("want nvme or loop")
		}
		return v, nil
	case paramFSType:
		if v != "" && !supportedFSTypes[v] {
			return "", errors.New("supported: ext4, xfs")
		}
		return v, nil
	}
	return v, nil
}

// checkFailFast refuses a fail-fast timeout the kernel would never reach:
// after ctrlLossTmo the controller is gone and I/O fails anyway (the kernel
// only warns). An unset ctrlLossTmo is the driver's default, forever.
func checkFailFast(ctrlLossTmo, fastIOFailTmo string) error {
	if ctrlLossTmo == "" || fastIOFailTmo == "" {
		return nil
	}
	loss, _ := strconv.Atoi(ctrlLossTmo) // both validated by checkNodeParam
	fail, _ := strconv.Atoi(fastIOFailTmo)
	if loss >= 0 && fail > loss {
		return fmt.Errorf("fail-fast after %ds is longer than the controller lives without RDS (%ds)", fail, loss)
	}
	return nil
}

// validateNodeParams checks the node-facing keys of a volume context.
func validateNodeParams(vc map[string]string) error {
	for _, k := range []string{paramNVMeAddress, paramNVMePort, paramCtrlLossTmo, paramReconnectDelay, paramKeepAliveTmo, paramFastIOFailTmo, paramDataPlane, paramFSType} {
		v, ok := vc[k]
		if !ok {
			continue
		}
		if _, err := checkNodeParam(k, v); err != nil {
			return status.Errorf(codes.InvalidArgument, "volume context %s=%.64q: %v", k, v, err)
		}
	}
	return nil
}

// volumeContext is what CreateVolume hands to ControllerPublish and the node.
func (d *Driver) volumeContext(slot, filePath string, p volumeParams) map[string]string {
	ctx := map[string]string{
		paramFilePath:    filePath,
		paramBasePath:    p.basePath,
		paramNVMeAddress: p.nvmeAddress,
		paramNVMePort:    strconv.Itoa(p.nvmePort),
		paramFSType:      p.fsType,
		paramNQN:         d.nqnFor(slot),
		paramDataPlane:   p.dataPlane,
		paramGracePeriod: p.gracePeriod.String(),
	}
	for k, v := range map[string]string{paramCtrlLossTmo: p.ctrlLossTmo, paramReconnectDelay: p.reconnectDelay,
		paramKeepAliveTmo: p.keepAliveTmo, paramFastIOFailTmo: p.fastIOFailTmo} {
		if v != "" {
			ctx[k] = v
		}
	}
	return ctx
}

func (d *Driver) nqnFor(slot string) string { return d.opts.NQNPrefix + slot }

func filePathFor(basePath, slot string) string { return ownership.FilePath(basePath, slot) }

// accessKind is how a set of capabilities may be attached.
type accessKind struct {
	block     bool
	multiNode bool
}

// checkCapabilities validates volume capabilities: single-node modes for block
// and filesystem, and MULTI_NODE_MULTI_WRITER for block only (KubeVirt live
// migration, where exactly two nodes hold the volume during the hand-off).
// Filesystem RWX is refused: ext4/xfs mounted on two nodes corrupts itself.
func checkCapabilities(caps []*csi.VolumeCapability) (accessKind, error) {
	if len(caps) == 0 {
		return accessKind{}, status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	var k accessKind
	for i, c := range caps {
		if c == nil || c.GetAccessMode() == nil {
			return k, status.Errorf(codes.InvalidArgument, "volume capability %d: access mode missing", i)
		}
		block := c.GetBlock() != nil
		mount := c.GetMount()
		if !block && mount == nil {
			return k, status.Errorf(codes.InvalidArgument, "volume capability %d: access type (block or mount) missing", i)
		}
		if mount != nil && mount.GetFsType() != "" && !supportedFSTypes[mount.GetFsType()] {
			return k, status.Errorf(codes.InvalidArgument, "volume capability %d: fsType %q unsupported (ext4, xfs)", i, mount.GetFsType())
		}
		switch c.GetAccessMode().GetMode() {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		case csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
			if !block {
				return k, status.Errorf(codes.InvalidArgument,
					"volume capability %d: ReadWriteMany is supported for volumeMode: Block only (KubeVirt live migration); "+
						"a filesystem mounted on two nodes would corrupt", i)
			}
			k.multiNode = true
		default:
			return k, status.Errorf(codes.InvalidArgument, "volume capability %d: access mode %s unsupported", i, c.GetAccessMode().GetMode())
		}
		k.block = k.block || block
	}
	return k, nil
}

func requireID(kind, id string) error {
	if id == "" {
		return status.Errorf(codes.InvalidArgument, "%s missing", kind)
	}
	return nil
}

// require is requireID for several fields, given as name, value pairs; the
// first empty one is reported.
func require(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if err := requireID(fields[i], fields[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func describe(d *rds.Disk) string {
	return fmt.Sprintf("slot %s (%d bytes, file %s)", d.Slot, d.Size, d.FilePath)
}
