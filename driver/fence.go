package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// Storage-side access control (Options.RestrictHosts). The rule is the one
// ARCHITECTURE.md states: the hosts an export allows are exactly the nodes
// holding a claim on the volume, and a host is revoked before its claim is
// considered gone.
//
// The desired allow-list is a pure function of the attachment manager's
// claims (themselves rebuilt from VolumeAttachments, the durable record):
// the host NQNs of the holders, or hostnqn.Nobody when there are none (an
// empty value would mean any host). Three things follow.
//
//   - ControllerPublish writes the whole list, read back, before it
//     answers: a publish can never succeed while the export still allows a
//     node that lost its claim, whatever was pending.
//   - ControllerUnpublish never talks to RDS: it releases the claim and
//     marks the volume pending; the reconciler applies pending volumes
//     (at once when RDS is connected, and on every reconnect).
//   - A controller that starts owes a sweep of every volume: whatever its
//     predecessor left pending is then found by comparing RDS with the
//     claims, so nothing needs a record of its own to survive a restart.

// fencer is the set of volumes whose export may not match their claims.
type fencer struct {
	mu sync.Mutex
	// gen counts marks; pending maps a volume to the generation of its last
	// mark, so an apply that computed its list before a later mark does
	// not clear it.
	gen     uint64
	pending map[string]uint64
	// all: every volume is owed a check (start-up).
	all    bool
	allGen uint64

	// pendingGauge and sweepGauge follow pending and all as they change
	// (nil: not registered), so a scrape takes no lock and does no I/O.
	pendingGauge, sweepGauge prometheus.Gauge
}

// Metric names (register): operators alert on a revocation that stays
// pending, which means a host that lost its claim may still reach RDS.
const (
	metricPendingRevocations = "rds_csi_pending_host_revocations"
	metricRevocationSweep    = "rds_csi_host_revocation_sweep_pending"
)

// register exports the fencer's bookkeeping on reg (nil: nowhere).
func (f *fencer) register(reg prometheus.Registerer) error {
	pending := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPendingRevocations,
		Help: "Volumes whose export may still allow a host that lost its claim: revocations recorded and not yet applied on RDS (--restrict-hosts)."})
	sweep := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricRevocationSweep,
		Help: "1 while the start-up check of every export's allow-list against the claims is still owed (--restrict-hosts), else 0."})
	if reg != nil {
		for _, c := range []prometheus.Collector{pending, sweep} {
			if err := reg.Register(c); err != nil {
				return fmt.Errorf("restrict hosts metrics: %w", err)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pendingGauge, f.sweepGauge = pending, sweep
	f.publish()
	return nil
}

// publish sets the gauges from the bookkeeping; the caller holds mu.
func (f *fencer) publish() {
	if f.pendingGauge == nil {
		return
	}
	f.pendingGauge.Set(float64(len(f.pending)))
	sweep := 0.0
	if f.all {
		sweep = 1
	}
	f.sweepGauge.Set(sweep)
}

func (f *fencer) mark(volume string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.pending == nil {
		f.pending = map[string]uint64{}
	}
	f.pending[volume] = f.gen
	f.publish()
}

func (f *fencer) markAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	f.all, f.allGen = true, f.gen
	f.publish()
}

// snapshot returns the current generation, the pending volumes (sorted) and
// whether a full sweep is owed.
func (f *fencer) snapshot() (uint64, []string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	vols := make([]string, 0, len(f.pending))
	for v := range f.pending {
		vols = append(vols, v)
	}
	slices.Sort(vols)
	return f.gen, vols, f.all
}

// done clears volume if it was not marked after gen.
func (f *fencer) done(volume string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g, ok := f.pending[volume]; ok && g <= gen {
		delete(f.pending, volume)
	}
	f.publish()
}

func (f *fencer) doneAll(gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.all && f.allGen <= gen {
		f.all = false
	}
	f.publish()
}

// Pending reports the volumes whose export may still allow a host that lost
// its claim, and whether a sweep of every volume is still owed.
func (d *Driver) Pending() ([]string, bool) {
	_, vols, all := d.fence.snapshot()
	return vols, all
}

// newExportHosts is the allow-list a new export is created with: with
// RestrictHosts nobody, until a publish names its node (a disk open to any
// host between its creation and its first publish would let any host in:
// a restored snapshot holds data from its first moment); without it,
// RouterOS's default (nil: the property is not set).
func (d *Driver) newExportHosts() []string {
	if !d.opts.RestrictHosts {
		return nil
	}
	return []string{hostnqn.Nobody}
}

// allowedHosts is the allow-list volume should have: the host NQNs of its
// holders other than without, or Nobody.
func (d *Driver) allowedHosts(volume string, without []string) ([]string, error) {
	var hosts []string
	for _, c := range d.attach.Holders(volume) {
		if slices.Contains(without, c.Node) {
			continue
		}
		h, err := hostnqn.For(c.Node)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	if len(hosts) == 0 {
		hosts = []string{hostnqn.Nobody}
	}
	return hosts, nil
}

// applyAllowList writes the allow-list of disk's export from the claims on
// it (less without). The caller holds the volume's lock.
func (d *Driver) applyAllowList(ctx context.Context, disk *rds.Disk, without []string) error {
	gen, _, _ := d.fence.snapshot()
	hosts, err := d.allowedHosts(disk.Slot, without)
	if err != nil {
		return err
	}
	if _, err := d.rds.SetAllowedHosts(ctx, disk.Slot, disk.FilePath, hosts); err != nil {
		return err
	}
	if len(without) == 0 {
		d.fence.done(disk.Slot, gen)
	}
	klog.V(2).InfoS("Export allow-list follows the claims", "volume", disk.Slot, "hosts", hosts)
	return nil
}

// allowPublished is ControllerPublish's half: the export allows exactly the
// holders, the publishing node among them, before the publish is answered.
func (d *Driver) allowPublished(ctx context.Context, disk *rds.Disk) error {
	if err := d.applyAllowList(ctx, disk, nil); err != nil {
		// The set may have been applied before the reply was lost: the
		// list is owed either way.
		d.fence.mark(disk.Slot)
		if errors.Is(err, hostnqn.ErrInvalidNodeID) {
			return status.Errorf(codes.InvalidArgument, "restrict hosts: %v", err)
		}
		return rdsStatus("allow the node's host on the export", err)
	}
	return nil
}

// MarkChanged records that volume's claims changed outside a publish (the
// reconciler cleared, dropped or restored one); ApplyPending applies it.
func (d *Driver) MarkChanged(volume string) {
	if d.opts.RestrictHosts {
		d.fence.mark(volume)
	}
}

// revoked records that volume lost a claim; the list is applied by
// ApplyPending (the reconciler), never by the unpublish itself.
func (d *Driver) revoked(volume string) {
	d.fence.mark(volume)
	if d.opts.OnRevocationPending != nil {
		d.opts.OnRevocationPending()
	}
}

// Fence makes the export of volume allow only the holders of its claims
// other than nodes, and returns once RDS shows it: the reconciler calls it
// before it clears those nodes' claims. A volume that is provably not on
// RDS, or not this driver's, has nothing to fence. With RestrictHosts off
// it does nothing.
func (d *Driver) Fence(ctx context.Context, volume string, nodes []string) error {
	if !d.opts.RestrictHosts {
		return nil
	}
	unlock, ok := d.ops.TryLock(volume)
	if !ok {
		return fmt.Errorf("fence volume %s: an operation on it is in progress", volume)
	}
	defer unlock()
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	disk, err := d.lookupVolume(ctx, volume)
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fence volume %s: %w", volume, err)
	}
	if err := d.applyAllowList(ctx, disk, nodes); err != nil {
		return fmt.Errorf("fence volume %s from %v: %w", volume, nodes, err)
	}
	// Checked again once the claims are cleared: a node that came back in
	// between keeps its claim and must get its host back.
	d.fence.mark(volume)
	return nil
}

// ApplyPending brings every pending volume's export (every volume's, after a
// start) in line with the claims. It needs the attachment state rebuilt
// (an empty state would revoke every host) and RDS connected; it returns an
// error while anything is left pending.
func (d *Driver) ApplyPending(ctx context.Context) error {
	if !d.opts.RestrictHosts {
		return nil
	}
	if err := d.stateReady(); err != nil {
		return err
	}
	if s := d.opts.RDS.State(); s != rds.StateConnected {
		return fmt.Errorf("apply pending revocations: RDS %s", s)
	}
	gen, vols, all := d.fence.snapshot()
	if all {
		_, ids, err := d.ownedVolumes(ctx, "sweep allow-lists")
		if err != nil {
			return err
		}
		vols = ids
	}
	var errs []error
	for _, id := range vols {
		if err := d.applyOne(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if all && len(errs) == 0 {
		d.fence.doneAll(gen)
	}
	return errors.Join(errs...)
}

func (d *Driver) applyOne(ctx context.Context, id string) error {
	unlock, ok := d.ops.TryLock(id)
	if !ok {
		// A publish or delete runs: a publish writes the list itself, and
		// the mark stays for the next run otherwise.
		return fmt.Errorf("allow-list of %s: an operation on it is in progress", id)
	}
	defer unlock()
	gen, _, _ := d.fence.snapshot()
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	disk, err := d.lookupVolume(ctx, id)
	if status.Code(err) == codes.NotFound {
		d.fence.done(id, gen)
		return nil
	}
	if err != nil {
		return fmt.Errorf("allow-list of %s: %w", id, err)
	}
	return d.applyAllowList(ctx, disk, nil)
}
