package bench

import (
	"context"
	"testing"
)

func TestZZDebugPostfix(t *testing.T) {
	cfg := FiguresConfig{Messages: 50, Domains: 3, Concurrency: 4, Dir: "/tmp/t7-pf", Log: t.Logf,
		Postfix: &PostfixConfig{AlsoWithoutDKIM: true}, Skip: map[string]bool{"a": true, "c": true, "d": true}}
	rep, err := Figures(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Markdown())
}
