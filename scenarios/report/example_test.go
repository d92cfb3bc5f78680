package report_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/report"
)

func ExampleSummary_Line() {
	s := report.Summary{
		Scenario: "rds-crash-2026-02-05",
		Seed:     20260205,
		Pass:     true,
		Virtual:  3*time.Hour + 15*time.Minute,
		Wall:     1423 * time.Millisecond,
	}
	fmt.Println(s.Line())
	s.Pass = false
	fmt.Println(s.Line())
	// Output:
	// rds-crash-2026-02-05 PASS virtual 3h15m0s wall 1.42s compression 8222x seed 20260205
	// rds-crash-2026-02-05 FAIL virtual 3h15m0s wall 1.42s compression 8222x seed 20260205
}

func ExampleTimeline() {
	trace := `{"t":0,"kind":"rds.state","f":{"state":"connected","previous":"connecting"}}
{"t":5000000000,"kind":"rds.command","f":{"cmd":"/disk print","err":"","out":"ab12"}}
{"t":6000000000,"kind":"rpc","f":{"method":"CreateVolume","key":"pvc-1","code":"OK"}}
{"t":600000000000,"kind":"fault.applied","f":{"fault":"rds.crash"}}
{"t":600000000000,"kind":"rds.state","f":{"state":"disconnected","previous":"connected","failures":1,"retryIn":"1.02s","err":"unavailable"}}
{"t":610000000000,"kind":"expect","f":{"name":"probe not ready","ok":false,"within":"10s"}}
`
	events, err := report.Parse(strings.NewReader(trace))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := report.Timeline(os.Stdout, events, false); err != nil {
		fmt.Println(err)
	}
	// Output:
	//   0h00m00.000s  RDS       connected
	//                 … 1 RouterOS command, 1 RPC
	//   0h10m00.000s  FAULT     rds.crash applied
	//   0h10m00.000s  RDS       connection lost · unavailable · 1 failure · retry in 1.02s
	//   0h10m10.000s  EXPECT    FAIL probe not ready (not within 10s)
}
