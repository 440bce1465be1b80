package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
	"github.com/sealpost/sealpost/internal/retention"
)

const retentionUsage = "admin retention show|set|sweep [--account ID] [--message-body-days N] [--portal-message-days N] [--quarantine-days N]"

// runRetention reads or sets an account's retention periods, or runs one
// retention sweep now (the server runs one every 15 minutes on the
// queue's leader). The operator acts as the platform ("system" actor
// "cli"); every change and every sweep is audited.
func runRetention(ctx context.Context, env Env, args []string) error {
	verbs := []string{"show", "set", "sweep"}
	if len(args) == 0 || !slices.Contains(verbs, args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stdout, "Usage: sealpost "+retentionUsage)
			return nil
		}
		fmt.Fprintln(env.Stderr, "Usage: sealpost "+retentionUsage)
		return errUsage
	}
	verb := args[0]
	fs := newFlagSet(env, "admin retention "+verb, retentionUsage)
	var cf configFlags
	cf.register(fs)
	accountID := fs.String("account", "", "account id (show, set; default: the only account)")
	body := fs.Int("message-body-days", 0, "days to keep finished messages' bodies (set; default: unchanged)")
	portal := fs.Int("portal-message-days", 0, "days to keep portal messages (set; default: unchanged)")
	quarantine := fs.Int("quarantine-days", 0, "days to keep quarantined messages (set; default: unchanged)")
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	s, err := cf.openStore(ctx, env, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	log := audit.New(s, audit.Options{})
	policies := retention.New(s, log, retention.Options{})
	if verb == "sweep" {
		sweeper, err := retention.NewSweeper(s, policies, log, retention.SweeperOptions{Budget: 10 * time.Minute})
		if err != nil {
			return err
		}
		app.RegisterShredders(sweeper, s, log)
		rep, err := sweeper.Sweep(ctx)
		fmt.Fprintf(env.Stdout, "accounts: %d\nmessage bodies shredded: %d\nportal messages shredded: %d\nquarantine holds expired: %d\ncomplete: %t\n",
			rep.Accounts, rep.Shredded[retention.KindMessageBody], rep.Shredded[retention.KindPortalMessage],
			rep.Shredded[retention.KindQuarantine], rep.Complete)
		return err
	}
	accounts := account.NewStore(s)
	if *accountID == "" {
		ids, err := accounts.AccountIDs(ctx)
		if err != nil {
			return err
		}
		if len(ids) != 1 {
			return fmt.Errorf("there are %d accounts: name one with --account", len(ids))
		}
		*accountID = ids[0]
	} else if _, err := accounts.GetAccount(ctx, *accountID); err != nil {
		return fmt.Errorf("account %s: %w", *accountID, err)
	}
	p, err := policies.Policy(ctx, *accountID)
	if err != nil {
		return err
	}
	if verb == "set" {
		for _, f := range []struct {
			v   int
			dst *int
		}{{*body, &p.MessageBodyDays}, {*portal, &p.PortalMessageDays}, {*quarantine, &p.QuarantineDays}} {
			if f.v != 0 {
				*f.dst = f.v
			}
		}
		actor := account.Actor{Principal: auth.Principal{AccountID: *accountID, ActorKind: auth.ActorSystem, ActorID: "cli",
			Role: account.RoleOwner, Scopes: auth.AllScopes()}}
		if p, err = policies.SetPolicy(ctx, actor, p); err != nil {
			var invalid *retention.InvalidPolicyError
			if errors.As(err, &invalid) {
				var msgs []string
				for _, i := range invalid.Issues {
					msgs = append(msgs, "--"+strings.ReplaceAll(i.Field, "_", "-")+" "+i.Message)
				}
				return errors.New(strings.Join(msgs, "; "))
			}
			return err
		}
	}
	updated := "never (defaults)"
	if p.UpdatedAt != nil {
		updated = p.UpdatedAt.Format(time.RFC3339)
	}
	fmt.Fprintf(env.Stdout, "account: %s\nmessage body days: %d\nportal message days: %d\nquarantine days: %d\nupdated: %s\n",
		*accountID, p.MessageBodyDays, p.PortalMessageDays, p.QuarantineDays, updated)
	return nil
}
