package bubble

import (
	"strings"
	"testing"
	"time"
)

func TestRunWaitsAndFakesTime(t *testing.T) {
	Host(t)
	var slept time.Duration
	err := Run(func() {
		if !Inside() {
			t.Error("Inside is false in a bubble")
		}
		start := time.Now()
		ch := make(chan struct{})
		go func() { time.Sleep(time.Hour); close(ch) }()
		<-ch
		slept = time.Since(start)
	})
	if err != nil {
		t.Fatal(err)
	}
	if slept != time.Hour {
		t.Fatalf("slept %v in the bubble, want exactly 1h of fake time", slept)
	}
	if Inside() {
		t.Fatal("Inside is true outside a bubble")
	}
}

func TestRunReportsPanicAndLeak(t *testing.T) {
	Host(t)
	if err := Run(func() { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic: err = %v", err)
	}
	block := make(chan struct{})
	err := Run(func() {
		inner := make(chan struct{})
		go func() { <-inner }() // never released: the bubble cannot end
		_ = block
	})
	if err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Fatalf("leak: err = %v", err)
	}
}

func TestRunNeedsAHost(t *testing.T) {
	if err := Run(func() {}); err != ErrNoHost {
		t.Fatalf("err = %v, want ErrNoHost", err)
	}
}
