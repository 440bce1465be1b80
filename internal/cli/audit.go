package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/audit"
)

// errChainBroken makes `audit verify` exit non-zero after printing where.
var errChainBroken = errors.New("audit chain verification failed")

func runAudit(ctx context.Context, env Env, args []string) error {
	if err := subcommand(env, args, "verify", "Usage: sealpost audit verify [--account ID] [flags]\n\nSubcommands:\n  verify  walk the audit hash chains and report the first broken link"); err != nil {
		return err
	}
	fs := newFlagSet(env, "audit verify", "audit verify [--account ID] [--config FILE] [--data-dir DIR]")
	var cf configFlags
	cf.register(fs)
	accountID := fs.String("account", "", "verify only this account's chain (default: every chain)")
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	s, err := cf.openStore(ctx, env, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	log := audit.New(s, audit.Options{})

	start := time.Now()
	lastPrint := time.Now()
	progress := func(done int64) {
		if time.Since(lastPrint) >= time.Second {
			lastPrint = time.Now()
			fmt.Fprintf(env.Stderr, "verified %d events...\n", done)
		}
	}
	var reports []audit.Report
	if *accountID != "" {
		r, err := log.Verify(ctx, *accountID, progress)
		if err != nil {
			return err
		}
		reports = []audit.Report{r}
	} else {
		reports, err = log.VerifyAll(ctx, progress)
		if err != nil {
			return err
		}
	}
	broken := false
	for _, r := range reports {
		fmt.Fprintln(env.Stdout, r.String())
		if !r.OK() {
			broken = true
		}
	}
	fmt.Fprintf(env.Stdout, "%d chain(s) checked in %s\n", len(reports), time.Since(start).Round(time.Millisecond))
	if broken {
		return errChainBroken
	}
	return nil
}
