package rds

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		out  string
		want error
	}{
		{"", nil},
		{"Flags: X - disabled; B - blocked\n", nil},
		{"failure: not enough space\n", ErrCapacity},
		{"failure: no such item\n", ErrNotFound},
		{"no such item\n", ErrNotFound},
		{"bad command name frob (line 1 column 2)\n", ErrRejected},
		{"syntax error (line 1 column 12)\n", ErrRejected},
		{"expected end of command (line 1 column 30)\n", ErrRejected},
		{"invalid value for argument file-size\n", ErrRejected},
		{"input does not match any value of nvme-tcp-export\n", ErrRejected},
		{"failure: disk with such slot already exists\n", ErrExists},
		{"failure: something new went wrong\n", ErrFailed},
		{"\r\nfailure: not enough space\r\n", ErrCapacity},
		{"  failure: not enough space\n", ErrCapacity}, // a lone line may be indented
		// Error-looking text inside values is not an error.
		{" 0   model=\"x\n     failure: not enough space\"\n", nil},
		{" 0   comment=\"syntax error\"\n", nil},
		{"12   type=file\n     no such item=\n", nil},
		{"  name: syntax error\n", nil},
	}
	for _, tt := range tests {
		got, line := Classify(tt.out)
		if got != tt.want {
			t.Errorf("Classify(%q) = %v (%q), want %v", tt.out, got, line, tt.want)
		}
	}
}

func TestErrorTypes(t *testing.T) {
	cause := context.DeadlineExceeded
	ce := &CommandError{Verb: VerbAdd, Command: "/disk add", Kind: ErrUnavailable, Err: cause}
	if !errors.Is(ce, ErrUnavailable) || !errors.Is(ce, context.DeadlineExceeded) || errors.Is(ce, ErrNotFound) {
		t.Errorf("CommandError unwrap: %v", ce)
	}
	wrapped := fmt.Errorf("creating: %w", ce)
	var got *CommandError
	if !errors.As(wrapped, &got) || got.Verb != VerbAdd {
		t.Errorf("errors.As failed: %v", wrapped)
	}
	ee := &ExistsError{Slot: "a", Reason: "size", ExistingSize: 1, RequestedSize: 2}
	if !errors.Is(ee, ErrExists) {
		t.Error("ExistsError does not match ErrExists")
	}
	he := &HostKeyError{Host: "rds:22", Expected: []string{"SHA256:aaa"}, Got: "SHA256:bbb"}
	if !errors.Is(he, ErrHostKeyMismatch) || he.Error() != "rds: SSH host key mismatch for rds:22: expected SHA256:aaa, got SHA256:bbb (refusing to connect)" {
		t.Errorf("HostKeyError: %v", he)
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ResultSuccess}, {ErrNotFound, ResultNotFound}, {ce, ResultUnavailable}, {ee, ResultExists},
		{ErrCapacity, ResultCapacity}, {ErrRejected, ResultRejected}, {errors.New("x"), ResultFailed},
	} {
		if got := resultOf(tt.err); got != tt.want {
			t.Errorf("resultOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// TestKindsListEverySentinel: a sentinel added to errors.go is either a kind
// (classified by KindOf, so transport errors and callers that name kinds see
// it) or one of the qualifiers that only ever come with ErrUnavailable.
func TestKindsListEverySentinel(t *testing.T) {
	qualifiers := map[string]bool{"ErrHostKeyMismatch": true, "ErrIncompleteReply": true, "ErrUnreachable": true}
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range Kinds() {
		kinds[k.Error()] = true
		if KindOf(fmt.Errorf("wrapped: %w", k)) != k {
			t.Errorf("KindOf does not find %v", k)
		}
	}
	declared := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			for i, name := range spec.(*ast.ValueSpec).Names {
				call, ok := spec.(*ast.ValueSpec).Values[i].(*ast.CallExpr)
				if !ok || !strings.HasPrefix(name.Name, "Err") || fmt.Sprint(call.Fun) != "&{errors New}" {
					continue
				}
				declared++
				msg, _ := strconv.Unquote(call.Args[0].(*ast.BasicLit).Value)
				if kinds[msg] == qualifiers[name.Name] {
					t.Errorf("%s: a kind is %v, a qualifier %v; want exactly one", name.Name, kinds[msg], qualifiers[name.Name])
				}
			}
		}
	}
	if declared != len(kinds)+len(qualifiers) {
		t.Errorf("errors.go declares %d sentinels, Kinds and the qualifiers name %d", declared, len(kinds)+len(qualifiers))
	}
	if KindOf(errors.New("x")) != nil {
		t.Error("KindOf classified a foreign error")
	}
}
