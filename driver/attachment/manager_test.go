package attachment

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestPublishIdempotent(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "same node twice", steps: []step{
			pub("v", "a").ev("Attached v a").holders("a"),
			adv(time.Hour),
			pub("v", "a").holders("a").then(func(t *testing.T, h *harness) {
				if got := h.m.Holders("v")[0].Since; !got.Equal(t0) {
					t.Errorf("Since moved to %v on a repeated publish", got)
				}
			}),
		}},
		{name: "multi-node block twice", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "a").holders("a"),
		}},
		{name: "migration pair published again", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			pubM("v", "a"),
			pubM("v", "b").holders("a", "b"),
		}},
		{name: "sole holder may switch mode", steps: []step{
			pub("v", "a").ev("Attached v a"),
			pubM("v", "a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a").holders("a", "b"),
		}},
		{name: "a repeated publish keeps the original grace", steps: []step{
			pubG("v", "a", 10*time.Second).ev("Attached v a"),
			pubG("v", "a", time.Hour),
			gone("a"),
			adv(10 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b").holders("b"),
		}},
		{name: "a repeated publish on a gone node succeeds without restarting its grace", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(20 * time.Second),
			pub("v", "a"),
			adv(10 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
	})
}

func TestConflictNamesHolder(t *testing.T) {
	healthy := "node a holds volume v; it must be unpublished from node a before it can be published to node b"
	runScenarios(t, []scenario{
		{name: "single-node holder", steps: []step{
			pub("v", "a").ev("Attached v a"),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a").holders("a"),
		}},
		{name: "multi-node holder, single-node request", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a").holders("a"),
		}},
		{name: "single-node holder, multi-node request", steps: []step{
			pub("v", "a").ev("Attached v a"),
			pubM("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a").holders("a"),
		}},
		{name: "a refusal changes nothing", steps: []step{
			pub("v", "a").ev("Attached v a"),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a"),
			unpub("v", "a").ev("Detached v a"),
			pub("v", "b").ev("Attached v b").holders("b"),
		}},
		{name: "a migration member cannot switch to single-node", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			pub("v", "a").err(ErrConflict, "node b holds volume v; it must be unpublished from node b").
				holder("b", 0).ev("Conflict v a b").holders("a", "b"),
		}},
	})
}

func TestUnpublishUnknownIsOK(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "unknown volume", steps: []step{
			unpub("v", "a").holders().then(func(t *testing.T, h *harness) {
				if s := h.m.Snapshot(); len(s) != 0 {
					t.Errorf("Snapshot = %v, want empty", s)
				}
			}),
		}},
		{name: "node is not the holder", steps: []step{
			pub("v", "a").ev("Attached v a"),
			unpub("v", "b").holders("a"),
		}},
		{name: "twice", steps: []step{
			pub("v", "a").ev("Attached v a"),
			unpub("v", "a").ev("Detached v a"),
			unpub("v", "a").holders(),
		}},
		{name: "from a gone node", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			unpub("v", "a").ev("Detached v a").holders(),
			pub("v", "b").ev("Attached v b"),
		}},
	})
}

func TestNodeGoneGracePeriod(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "refused during grace with time left, allowed right after", steps: []step{
			pub("v", "a").ev("Attached v a"),
			adv(5 * time.Second),
			gone("a"),
			adv(18 * time.Second),
			pub("v", "b").err(ErrConflict, "node a holds volume v; its claim lapses at "+at(35*time.Second)+" (in 12s)").
				holder("a", 12*time.Second).ev("Conflict v b a"),
			adv(12*time.Second - ms),
			pub("v", "b").err(ErrConflict, "(in 1ms)").holder("a", ms).ev("Conflict v b a").holders("a"),
			adv(2 * ms),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b").holders("b").then(func(t *testing.T, h *harness) {
				if m := h.rec.last[0].Message; !strings.Contains(m, "lapsed at "+at(35*time.Second)) {
					t.Errorf("StaleCleared message %q does not say when the claim lapsed", m)
				}
			}),
		}},
		{name: "the lapse instant counts as lapsed", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(30 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
		{name: "manager-wide grace option", opts: Options{GracePeriod: 10 * time.Second}, steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(10*time.Second - ms),
			pub("v", "b").err(ErrConflict, "(in 1ms)").holder("a", ms).ev("Conflict v b a"),
			adv(ms),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
		{name: "Sweep clears claims nobody asked for", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(30*time.Second - ms),
			sweep().hold("v", "a"),
			adv(ms),
			sweep().cleared("v/a").ev("StaleCleared v a").hold("v"),
			pub("v", "b").ev("Attached v b"),
		}},
		{name: "new claims on a gone node are refused", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			pub("w", "a").err(ErrNodeGone, "node a was reported gone at "+at(0)).holders(),
			pub("v", "a"),
			back("a").ev("GracePeriodUsed v a"),
			pub("w", "a").ev("Attached w a"),
		}},
		{name: "a repeated report does not postpone the lapse", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(20 * time.Second),
			gone("a"),
			pub("w", "a").err(ErrNodeGone, "node a was reported gone at "+at(0)+";"),
			adv(10 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
		{name: "only the gone node's claims lapse", steps: []step{
			pub("v", "a").ev("Attached v a"),
			pub("w", "c").ev("Attached w c"),
			gone("a"),
			adv(31 * time.Second),
			sweep().cleared("v/a").ev("StaleCleared v a"),
			pub("w", "b").err(ErrConflict, "must be unpublished").holder("c", 0).ev("Conflict w b c"),
		}},
	})
}

func TestNodeBackWithinGrace(t *testing.T) {
	healthy := "node a holds volume v; it must be unpublished"
	runScenarios(t, []scenario{
		{name: "back within grace keeps the claim", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(10 * time.Second),
			back("a").ev("GracePeriodUsed v a"),
			adv(time.Hour),
			sweep(),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a").holders("a"),
		}},
		{name: "back a millisecond before the lapse", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(30*time.Second - ms),
			back("a").ev("GracePeriodUsed v a"),
			adv(ms),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a"),
		}},
		{name: "back after the lapse while nobody took the volume", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(31 * time.Second),
			back("a").ev("GracePeriodUsed v a").then(func(t *testing.T, h *harness) {
				if m := h.rec.last[0].Message; !strings.Contains(m, "claim stands") {
					t.Errorf("message %q does not say the lapsed claim stands", m)
				}
			}),
			pub("v", "b").err(ErrConflict, healthy).holder("a", 0).ev("Conflict v b a"),
		}},
		{name: "back after the claim was cleared", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(30 * time.Second),
			sweep().cleared("v/a").ev("StaleCleared v a"),
			back("a").hold("v"),
			pub("v", "a").ev("Attached v a"),
		}},
		{name: "back for a node never reported gone", steps: []step{
			pub("v", "a").ev("Attached v a"),
			back("a"),
			back("b"),
		}},
		{name: "gone again starts a fresh grace", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			adv(10 * time.Second),
			back("a").ev("GracePeriodUsed v a"),
			adv(10 * time.Second),
			gone("a"),
			adv(25 * time.Second),
			pub("v", "b").err(ErrConflict, "(in 5s)").holder("a", 5*time.Second).ev("Conflict v b a"),
			adv(5 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
		{name: "back covers every claim of the node, in volume order", steps: []step{
			pub("v2", "a").ev("Attached v2 a"),
			pub("v1", "a").ev("Attached v1 a"),
			pub("v3", "b").ev("Attached v3 b"),
			gone("a"),
			gone("b"),
			back("a").ev("GracePeriodUsed v1 a", "GracePeriodUsed v2 a"),
			adv(30 * time.Second),
			pub("v3", "c").ev("StaleCleared v3 b c", "Attached v3 c"),
		}},
	})
}

// There is no NotReady input: Options and Manager have none, and only
// NodeGone starts the grace clock. These cases show that no amount of time
// frees a volume whose holder was never reported gone.
func TestNotReadyIsNotGone(t *testing.T) {
	var cases []scenario
	for _, d := range []time.Duration{31 * time.Second, 24 * time.Hour, 365 * 24 * time.Hour} {
		cases = append(cases, scenario{name: d.String(), steps: []step{
			pub("v", "a").ev("Attached v a"),
			pubM("m", "a").ev("Attached m a"),
			pubM("m", "b").ev("Attached m b a", "MigrationStarted m b a"),
			adv(d),
			sweep().overdue(overdueIf(d >= DefaultMigrationWindow, "m")...).
				ev(overdueIf(d >= DefaultMigrationWindow, "MigrationTimedOut m b a")...).hold("v", "a"),
			pub("v", "b").err(ErrConflict, "node a holds volume v; it must be unpublished").holder("a", 0).ev("Conflict v b a"),
			pubM("m", "c").err(ErrTooManyAttachments).ev("Conflict m c a").holders("a", "b"),
		}})
	}
	runScenarios(t, cases)
}

func overdueIf(cond bool, s string) []string {
	if cond {
		return []string{s}
	}
	return nil
}

func TestPerVolumeGrace(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "each volume lapses on its own grace", steps: []step{
			pubG("v5", "a", 5*time.Second).ev("Attached v5 a"),
			pubG("v60", "a", 60*time.Second).ev("Attached v60 a"),
			pub("vdef", "a").ev("Attached vdef a"),
			gone("a"),
			adv(5 * time.Second),
			pub("v5", "b").ev("StaleCleared v5 a b", "Attached v5 b"),
			pub("vdef", "b").err(ErrConflict, "(in 25s)").holder("a", 25*time.Second).ev("Conflict vdef b a"),
			pub("v60", "b").err(ErrConflict, "(in 55s)").holder("a", 55*time.Second).ev("Conflict v60 b a"),
			adv(25 * time.Second),
			pub("vdef", "b").ev("StaleCleared vdef a b", "Attached vdef b"),
			pub("v60", "b").err(ErrConflict, "(in 30s)").holder("a", 30*time.Second).ev("Conflict v60 b a"),
			adv(30 * time.Second),
			pub("v60", "b").ev("StaleCleared v60 a b", "Attached v60 b"),
		}},
		{name: "override beats the manager default", opts: Options{GracePeriod: 10 * time.Second}, steps: []step{
			pub("v", "a").ev("Attached v a"),
			pubG("w", "a", 40*time.Second).ev("Attached w a"),
			gone("a"),
			adv(10 * time.Second),
			sweep().cleared("v/a").ev("StaleCleared v a"),
			pub("w", "b").err(ErrConflict, "(in 30s)").holder("a", 30*time.Second).ev("Conflict w b a"),
		}},
		{name: "negative grace is invalid", steps: []step{
			pubG("v", "a", -time.Second).err(ErrInvalidArgument).holders(),
		}},
	})
}

func TestMultiNodeBlock(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "two nodes, never three", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a").holders("a", "b"),
			pubM("v", "c").err(ErrTooManyAttachments, "volume v is already attached to nodes a and b; a third node (c) is never allowed").
				ev("Conflict v c a").hold("v", "a", "b"),
			pub("v", "c").err(ErrTooManyAttachments).ev("Conflict v c a"),
		}},
		{name: "source unpublishes: migration completes", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			unpub("v", "a").ev("Detached v a b", "MigrationCompleted v b a").holders("b"),
			pubM("v", "c").ev("Attached v c b", "MigrationStarted v c b").holders("b", "c"),
		}},
		{name: "target unpublishes: migration completes (rolled back)", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			unpub("v", "b").ev("Detached v b a", "MigrationCompleted v a b").holders("a"),
		}},
		{name: "window: timed out once, reported every sweep, claims kept", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			adv(DefaultMigrationWindow - ms),
			sweep(),
			adv(ms),
			sweep().overdue("v").ev("MigrationTimedOut v b a").hold("v", "a", "b"),
			adv(time.Hour),
			sweep().overdue("v").hold("v", "a", "b").then(func(t *testing.T, h *harness) {
				want := []Migration{{Volume: "v", Source: "a", Target: "b", Since: t0,
					Deadline: t0.Add(DefaultMigrationWindow), Overdue: true}}
				if got := h.m.Migrations(); !slices.Equal(got, want) {
					t.Errorf("Migrations() = %+v, want %+v", got, want)
				}
			}),
			unpub("v", "b").ev("Detached v b a", "MigrationCompleted v a b"),
			pubM("v", "c").ev("Attached v c a", "MigrationStarted v c a"),
			adv(DefaultMigrationWindow),
			sweep().overdue("v").ev("MigrationTimedOut v c a"),
		}},
		{name: "configured window", opts: Options{MigrationWindow: time.Minute}, steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			adv(time.Minute - ms),
			sweep(),
			adv(ms),
			sweep().overdue("v").ev("MigrationTimedOut v b a"),
		}},
		{name: "gone source lapses: migration completes", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			gone("a"),
			pubM("v", "c").err(ErrTooManyAttachments, "node a's claim lapses at "+at(30*time.Second)+" (in 30s)").ev("Conflict v c a"),
			adv(30 * time.Second),
			sweep().cleared("v/a").ev("StaleCleared v a", "MigrationCompleted v b a").hold("v", "b"),
		}},
		{name: "a gone holder lapsing lets the next target in", steps: []step{
			pubM("v", "a").ev("Attached v a"),
			pubM("v", "b").ev("Attached v b a", "MigrationStarted v b a"),
			gone("a"),
			adv(30 * time.Second),
			pubM("v", "c").ev("StaleCleared v a c", "MigrationCompleted v b a", "Attached v c b", "MigrationStarted v c b").holders("b", "c"),
		}},
	})
}

func TestModeFor(t *testing.T) {
	for _, c := range []struct {
		multiNode, block bool
		want             Mode
		wantErr          error
	}{
		{false, false, SingleNode, nil},
		{false, true, SingleNode, nil},
		{true, true, MultiNodeBlock, nil},
		{true, false, SingleNode, ErrInvalidArgument},
	} {
		got, err := ModeFor(c.multiNode, c.block)
		if got != c.want || !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("ModeFor(multiNode=%v, block=%v) = %v, %v; want %v, %v", c.multiNode, c.block, got, err, c.want, c.wantErr)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "empty volume", steps: []step{pub("", "a").err(ErrInvalidArgument, "empty volume")}},
		{name: "empty node", steps: []step{pub("v", "").err(ErrInvalidArgument, "empty node").holders()}},
		{name: "unknown mode", steps: []step{{op: opPublish, vol: "v", node: "a", mode: Mode(7), wantErr: ErrInvalidArgument,
			wantMsg: []string{"Mode(7)"}, checkHold: true}}},
	})
}

func TestConcurrentMigrationsDoNotInterfere(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "disjoint nodes", steps: []step{
			pubM("v1", "a").ev("Attached v1 a"),
			pubM("v1", "b").ev("Attached v1 b a", "MigrationStarted v1 b a"),
			adv(3 * time.Minute),
			pubM("v2", "c").ev("Attached v2 c"),
			pubM("v2", "d").ev("Attached v2 d c", "MigrationStarted v2 d c"),
			adv(2*time.Minute - ms),
			sweep(),
			adv(ms),
			sweep().overdue("v1").ev("MigrationTimedOut v1 b a").then(func(t *testing.T, h *harness) {
				got := h.m.Migrations()
				if len(got) != 2 || got[1].Volume != "v2" || got[1].Overdue || !got[1].Deadline.Equal(t0.Add(8*time.Minute)) {
					t.Errorf("Migrations() = %+v, want v2 due at %v", got, t0.Add(8*time.Minute))
				}
			}),
			unpub("v1", "a").ev("Detached v1 a b", "MigrationCompleted v1 b a"),
			adv(3*time.Minute - ms),
			sweep(),
			adv(ms),
			sweep().overdue("v2").ev("MigrationTimedOut v2 d c"),
		}},
		{name: "same nodes, opposite directions", steps: []step{
			pubM("v1", "a").ev("Attached v1 a"),
			pubM("v2", "b").ev("Attached v2 b"),
			pubM("v1", "b").ev("Attached v1 b a", "MigrationStarted v1 b a"),
			adv(time.Minute),
			pubM("v2", "a").ev("Attached v2 a b", "MigrationStarted v2 a b"),
			adv(time.Minute),
			unpub("v1", "a").ev("Detached v1 a b", "MigrationCompleted v1 b a").holders("b"),
			sweep().hold("v2", "b", "a").then(func(t *testing.T, h *harness) {
				got := h.m.Migrations()
				if len(got) != 1 || got[0].Volume != "v2" || got[0].Source != "b" || !got[0].Since.Equal(t0.Add(time.Minute)) {
					t.Errorf("Migrations() = %+v, want only v2 b->a since t0+1m", got)
				}
			}),
			adv(4*time.Minute - ms),
			sweep(),
			adv(ms),
			sweep().overdue("v2").ev("MigrationTimedOut v2 a b"),
		}},
		{name: "gone timestamps are per claim", steps: []step{
			pub("v1", "a").ev("Attached v1 a"),
			pub("v2", "c").ev("Attached v2 c"),
			gone("a"),
			adv(10 * time.Second),
			gone("c"),
			adv(20 * time.Second),
			pub("v1", "b").ev("StaleCleared v1 a b", "Attached v1 b"),
			pub("v2", "b").err(ErrConflict, "(in 10s)").holder("c", 10*time.Second).ev("Conflict v2 b c"),
			adv(10 * time.Second),
			pub("v2", "b").ev("StaleCleared v2 c b", "Attached v2 b"),
		}},
	})
}

func TestRestore(t *testing.T) {
	claim := func(vol, node string, mode Mode, since time.Duration) Claim {
		return Claim{Volume: vol, Node: node, Mode: mode, Since: t0.Add(since)}
	}
	goneClaim := func(vol, node string, goneAgo time.Duration) Claim {
		c := claim(vol, node, SingleNode, -time.Hour)
		c.GoneSince, c.Grace = t0.Add(-goneAgo), 30*time.Second
		return c
	}
	migrationAt := func(since, deadline time.Duration, overdue bool) func(t *testing.T, h *harness) {
		return func(t *testing.T, h *harness) {
			want := []Migration{{Volume: "m", Source: "a", Target: "b", Since: t0.Add(since), Deadline: t0.Add(deadline), Overdue: overdue}}
			if got := h.m.Migrations(); !slices.Equal(got, want) {
				t.Errorf("Migrations() = %+v, want %+v", got, want)
			}
		}
	}
	runScenarios(t, []scenario{
		{name: "claim is restored with its timestamps", steps: []step{
			restore(claim("v", "a", SingleNode, -time.Hour)).hold("v", "a").then(func(t *testing.T, h *harness) {
				c := h.m.Holders("v")[0]
				if !c.Since.Equal(t0.Add(-time.Hour)) || c.Grace != DefaultGracePeriod || !c.GoneSince.IsZero() {
					t.Errorf("restored %+v", c)
				}
			}),
			pub("v", "b").err(ErrConflict, "node a holds volume v").holder("a", 0).ev("Conflict v b a"),
			pub("v", "a"),
		}},
		{name: "migration window resumes from the claims' timestamps", steps: []step{
			restore(claim("m", "a", MultiNodeBlock, -10*time.Minute), claim("m", "b", MultiNodeBlock, -2*time.Minute)).
				then(migrationAt(-2*time.Minute, 3*time.Minute, false)),
			adv(3*time.Minute - ms),
			sweep(),
			adv(ms),
			sweep().overdue("m").ev("MigrationTimedOut m b a"),
		}},
		{name: "input order does not matter", steps: []step{
			restore(claim("m", "b", MultiNodeBlock, -2*time.Minute), claim("m", "a", MultiNodeBlock, -10*time.Minute)).
				hold("m", "a", "b").then(migrationAt(-2*time.Minute, 3*time.Minute, false)),
		}},
		{name: "an overdue migration is reported by the first sweep", steps: []step{
			restore(claim("m", "a", MultiNodeBlock, -10*time.Minute), claim("m", "b", MultiNodeBlock, -6*time.Minute)).
				then(migrationAt(-6*time.Minute, -time.Minute, true)),
			sweep().overdue("m").ev("MigrationTimedOut m b a"),
			pubM("m", "c").err(ErrTooManyAttachments).ev("Conflict m c a"),
		}},
		{name: "grace resumes and the node stays gone", steps: []step{
			restore(goneClaim("v", "a", 20*time.Second), claim("w", "a", SingleNode, -time.Hour)),
			pub("v", "b").err(ErrConflict, "(in 10s)").holder("a", 10*time.Second).ev("Conflict v b a"),
			pub("w", "b").err(ErrConflict, "(in 10s)").holder("a", 10*time.Second).ev("Conflict w b a"),
			pub("x", "a").err(ErrNodeGone).holders(),
			adv(10 * time.Second),
			pub("v", "b").ev("StaleCleared v a b", "Attached v b"),
		}},
		{name: "a node reported gone before Restore stays gone", steps: []step{
			gone("a"),
			restore(claim("v", "a", SingleNode, -time.Hour)),
			pub("v", "b").err(ErrConflict, "(in 30s)").holder("a", 30*time.Second).ev("Conflict v b a"),
		}},
		{name: "replaces the previous state", steps: []step{
			pub("x", "z").ev("Attached x z"),
			restore(claim("v", "a", SingleNode, 0)).then(func(t *testing.T, h *harness) {
				if s := h.m.Snapshot(); len(s) != 1 || s[0].Volume != "v" {
					t.Errorf("Snapshot = %+v, want only v", s)
				}
			}),
			pub("x", "y").ev("Attached x y"),
		}},
		{name: "zero Since and Grace take defaults", opts: Options{GracePeriod: 7 * time.Second}, steps: []step{
			restore(Claim{Volume: "v", Node: "a"}).then(func(t *testing.T, h *harness) {
				c := h.m.Holders("v")[0]
				if !c.Since.Equal(t0) || c.Grace != 7*time.Second {
					t.Errorf("restored %+v, want Since=t0 Grace=7s", c)
				}
			}),
		}},
		{name: "anomalies are kept and reported", anomalous: true, steps: []step{
			restore(
				claim("v", "a", SingleNode, -2*time.Minute), claim("v", "b", SingleNode, -time.Minute),
				claim("w", "a", MultiNodeBlock, -3*time.Minute), claim("w", "b", MultiNodeBlock, -2*time.Minute),
				claim("w", "c", MultiNodeBlock, -time.Minute),
				claim("d", "a", SingleNode, -5*time.Minute), claim("d", "a", SingleNode, -time.Minute),
				Claim{Volume: "", Node: "a"}, Claim{Volume: "bad", Node: "a", Mode: Mode(9)},
			).err(nil,
				"volume v is held by a (SingleNode), b (SingleNode)",
				"volume w is held by a (MultiNodeBlock), b (MultiNodeBlock), c (MultiNodeBlock)",
				"duplicate claim of node a on volume d",
				`volume "bad" skipped`,
			).hold("v", "a", "b"),
			pub("v", "c").err(ErrTooManyAttachments).ev("Conflict v c a"),
			pub("v", "a").err(ErrConflict, "node b holds volume v").holder("b", 0).ev("Conflict v a b"),
			unpub("v", "b").ev("Detached v b a"),
			pub("v", "c").err(ErrConflict).holder("a", 0).ev("Conflict v c a"),
			unpub("w", "c").ev("Detached w c a").holders("a", "b"),
			pubM("w", "c").err(ErrTooManyAttachments).ev("Conflict w c a"),
			sweep().hold("bad").then(func(t *testing.T, h *harness) {
				if d := h.m.Holders("d"); len(d) != 1 || !d[0].Since.Equal(t0.Add(-5*time.Minute)) {
					t.Errorf("Holders(d) = %+v, want the oldest duplicate", d)
				}
			}),
		}},
	})
}

func TestForgetNode(t *testing.T) {
	runScenarios(t, []scenario{
		{name: "clears every claim of the node at once", steps: []step{
			pub("v2", "a").ev("Attached v2 a"),
			pub("v10", "a").ev("Attached v10 a"),
			pub("v3", "b").ev("Attached v3 b"),
			pubM("v4", "a").ev("Attached v4 a"),
			pubM("v4", "b").ev("Attached v4 b a", "MigrationStarted v4 b a"),
			forget("a", 3).ev("StaleCleared v10 a", "StaleCleared v2 a", "StaleCleared v4 a", "MigrationCompleted v4 b a").hold("v2"),
			forget("a", 0),
			forget("nobody", 0),
			pub("v2", "c").ev("Attached v2 c"),
			pub("v3", "c").err(ErrConflict).holder("b", 0).ev("Conflict v3 c b"),
		}},
		{name: "does not mark a gone node back", steps: []step{
			pub("v", "a").ev("Attached v a"),
			gone("a"),
			forget("a", 1).ev("StaleCleared v a"),
			pub("w", "a").err(ErrNodeGone),
			pub("v", "b").ev("Attached v b"),
		}},
	})
}

// TestEventsOutsideLocks uses a sink that calls back into the Manager. If
// any event were delivered under a lock the test would deadlock.
func TestEventsOutsideLocks(t *testing.T) {
	h := newHarness(Options{})
	var seen []EventType
	h.m.sink = EventFunc(func(e Event) {
		seen = append(seen, e.Type)
		h.m.Holders(e.Volume)
		h.m.Snapshot()
		h.m.Migrations()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := h.m
		_ = m.Publish("v", "a", MultiNodeBlock, 0)
		_ = m.Publish("v", "b", MultiNodeBlock, 0)
		_ = m.Publish("v", "c", MultiNodeBlock, 0)
		h.clk.Add(DefaultMigrationWindow)
		m.Sweep()
		m.Unpublish("v", "b")
		_ = m.Publish("w", "a", SingleNode, 0)
		m.NodeGone("a")
		m.NodeBack("a")
		m.NodeGone("a")
		h.clk.Add(DefaultGracePeriod)
		_ = m.Publish("w", "b", SingleNode, 0)
		m.Sweep()
		_ = m.Publish("x", "b", SingleNode, 0)
		m.ForgetNode("b")
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("deadlock: an event was delivered while a lock was held")
	}
	want := []EventType{Attached, Attached, MigrationStarted, Conflict, MigrationTimedOut, Detached, MigrationCompleted,
		Attached, GracePeriodUsed, GracePeriodUsed, StaleCleared, Attached, StaleCleared, Attached, StaleCleared, StaleCleared}
	if !slices.Equal(seen, want) {
		t.Errorf("events %v\nwant %v", seen, want)
	}
}

// TestDeterministicTrace builds the same state in two orders; the traces of
// everything after that must match byte for byte, as the scenario runner
// requires.
func TestDeterministicTrace(t *testing.T) {
	trace := func(reverse bool) string {
		h := newHarness(Options{})
		var b strings.Builder
		h.m.sink = EventFunc(func(e Event) {
			b.WriteString(fmtTime(e.Time) + " " + compact(e) + " " + e.Message + "\n")
		})
		type att struct{ vol, node, target string }
		atts := make([]att, 200)
		for i := range atts {
			atts[i] = att{vol: "vol-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('A'+i/26)),
				node: []string{"n1", "n2", "n3"}[i%3]}
			if i%4 == 0 {
				atts[i].target = "n4"
			}
		}
		if reverse {
			slices.Reverse(atts)
		}
		for _, a := range atts {
			_ = h.m.Publish(a.vol, a.node, MultiNodeBlock, 0)
			if a.target != "" {
				_ = h.m.Publish(a.vol, a.target, MultiNodeBlock, 0)
			}
		}
		b.Reset()
		h.m.NodeGone("n1")
		h.m.NodeBack("n1")
		h.m.NodeGone("n2")
		h.clk.Add(DefaultMigrationWindow)
		res := h.m.Sweep()
		h.m.ForgetNode("n3")
		for _, c := range res.Cleared {
			b.WriteString("cleared " + c.Volume + "/" + c.Node + "\n")
		}
		for _, mg := range res.Overdue {
			b.WriteString("overdue " + mg.Volume + "\n")
		}
		for _, c := range h.m.Snapshot() {
			b.WriteString("claim " + c.Volume + "/" + c.Node + " " + fmtTime(c.Since) + "\n")
		}
		return b.String()
	}
	a, z := trace(false), trace(true)
	if a != z {
		t.Errorf("traces differ with insertion order:\n%s\n---\n%s", a, z)
	}
	if !strings.Contains(a, "StaleCleared") || !strings.Contains(a, "MigrationTimedOut") || !strings.Contains(a, "GracePeriodUsed") {
		t.Errorf("trace lacks the events it is meant to order:\n%s", a)
	}
}

// TestNoWallClock keeps every decision on the injected clock: one stray
// time.Now would make the scenario runner's traces irreproducible.
func TestNoWallClock(t *testing.T) {
	banned := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "Tick": true, "NewTimer": true, "NewTicker": true}
	files, _ := filepath.Glob("*.go")
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fs := token.NewFileSet()
		af, err := parser.ParseFile(fs, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(af, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "time" && banned[sel.Sel.Name] {
					t.Errorf("%s: time.%s bypasses the injected clock", fs.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
