package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/auth"
)

// runDomain registers a sending domain from the host: `sealpost admin
// domain add DOMAIN [--account ID] [--skip-dns-check]`. It creates the
// DKIM keys, prints the DNS records to publish, and verifies them by DNS
// unless told not to (for DNS the server cannot see). Audited as the
// system actor "cli".
func runDomain(ctx context.Context, env Env, args []string) error {
	const usage = "admin domain add DOMAIN [--account ID] [--skip-dns-check]"
	if len(args) == 0 || args[0] != "add" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stdout, "Usage: sealpost "+usage)
			return nil
		}
		fmt.Fprintln(env.Stderr, "Usage: sealpost "+usage)
		return errUsage
	}
	fs := newFlagSet(env, "admin domain add", usage)
	var cf configFlags
	cf.register(fs)
	accountID := fs.String("account", "", "account id (default: the only account)")
	skip := fs.Bool("skip-dns-check", false, "mark the domain verified without looking up its DKIM records")
	// The domain may come before or after the flags.
	rest := args[1:]
	var name string
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		name, rest = rest[0], rest[1:]
	}
	if err := parse(env, fs, rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	}
	if name == "" || fs.NArg() > 1 || (fs.NArg() == 1 && name != fs.Arg(0)) {
		fmt.Fprintln(env.Stderr, "Usage: sealpost "+usage)
		return errUsage
	}
	cfg, err := cf.load(env, nil)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer a.Close()
	if *accountID == "" {
		ids, err := a.Accounts.AccountIDs(ctx)
		if err != nil {
			return err
		}
		if len(ids) != 1 {
			return fmt.Errorf("there are %d accounts: name one with --account", len(ids))
		}
		*accountID = ids[0]
	}
	actor := account.Actor{Principal: auth.Principal{AccountID: *accountID, ActorKind: auth.ActorSystem, ActorID: "cli",
		Role: account.RoleOwner, Scopes: auth.AllScopes()}}
	d, err := a.Domains.Register(ctx, actor, name, *skip)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "domain: %s\nstatus: %s\n", d.Name, d.Status)
	if d.CheckResult != "" {
		fmt.Fprintf(env.Stdout, "check: %s\n", d.CheckResult)
	}
	fmt.Fprintln(env.Stdout, "\nDNS records to publish:")
	for _, r := range a.Domains.Records(d) {
		need := "suggested"
		if r.Required {
			need = "required"
		}
		fmt.Fprintf(env.Stdout, "  %s %s (%s: %s)\n    %s\n", r.Type, r.Name, need, r.Purpose, r.Value)
	}
	return nil
}
