package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/sealpost/sealpost/internal/account"
	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/audit"
	"github.com/sealpost/sealpost/internal/auth"
)

const adminHelp = `Usage: sealpost admin <subcommand> [flags]

Subcommands:
  bootstrap                      create the first account, owner user and API client; prints them once
  clients list   --account ID    list the account's API clients (secrets are never shown again)
  clients create --account ID --name NAME --role ROLE [--scopes a,b]
                                 create an API client; prints its secret once
  clients rotate --account ID --client CLIENT_ID
                                 replace a client's secret; prints the new one once
  clients revoke --account ID --client CLIENT_ID
                                 revoke a client
  users list     --account ID    list the account's users
  users create   --account ID --email EMAIL --role ROLE
                                 add a user; prints the initial password once
  users update   --account ID --user USER_ID [--role ROLE] [--disabled=true|false] [--unlock]
                                 change a user's role or disable them
  domain add DOMAIN [--account ID] [--skip-dns-check]
                                 register a sending domain with new DKIM keys; prints the DNS records
  retention show|set [--account ID] [--message-body-days N] [--portal-message-days N] [--quarantine-days N]
                                 show or change an account's retention periods (days)
  retention sweep                crypto-shred now what every account's retention says has expired`

func runAdmin(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 && args[0] == "clients" {
		return runClients(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "users" {
		return runUsers(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "domain" {
		return runDomain(ctx, env, args[1:])
	}
	if len(args) > 0 && args[0] == "retention" {
		return runRetention(ctx, env, args[1:])
	}
	if err := subcommand(env, args, "bootstrap", adminHelp); err != nil {
		return err
	}
	fs := newFlagSet(env, "admin bootstrap", "admin bootstrap [--config FILE] [--data-dir DIR] [--force] [--account-name NAME] [--owner-email EMAIL]")
	var cf configFlags
	cf.register(fs)
	force := fs.Bool("force", false, "create another account even when accounts exist")
	name := fs.String("account-name", "", "account name (bootstrap.account_name)")
	email := fs.String("owner-email", "", "owner email (bootstrap.owner_email)")
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	extra := map[string]string{}
	if *name != "" {
		extra["bootstrap.account_name"] = *name
	}
	if *email != "" {
		extra["bootstrap.owner_email"] = *email
	}
	cfg, err := cf.load(env, extra)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, app.NewLogger(cfg, env.Stderr))
	if err != nil {
		return err
	}
	defer a.Close()
	created, err := a.Bootstrap(ctx, env.Stdout, *force)
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintln(env.Stdout, "an account already exists: nothing to do (use --force to create another)")
	}
	return nil
}

// operatorAdmin opens the store and returns the administration service
// acting for the host operator on accountID: the platform ("system" actor
// "cli") with every scope, since whoever can run this command can read
// the database anyway. Every change is still audited.
func operatorAdmin(ctx context.Context, env Env, cf *configFlags, accountID string) (*account.Admin, account.Actor, func(), error) {
	s, err := cf.openStore(ctx, env, nil)
	if err != nil {
		return nil, account.Actor{}, nil, err
	}
	accounts := account.NewStore(s)
	if _, err := accounts.GetAccount(ctx, accountID); err != nil {
		_ = s.Close()
		return nil, account.Actor{}, nil, fmt.Errorf("account %s: %w", accountID, err)
	}
	actor := account.Actor{Principal: auth.Principal{
		AccountID: accountID, ActorKind: auth.ActorSystem, ActorID: "cli", Role: account.RoleOwner, Scopes: auth.AllScopes(),
	}}
	return account.NewAdmin(s, accounts, audit.New(s, audit.Options{})), actor, func() { _ = s.Close() }, nil
}

// runClients manages API clients from the host. The operator acts as the
// platform ("system" actor "cli") with every scope: whoever can run this
// command can read the database anyway. Every change is audited.
func runClients(ctx context.Context, env Env, args []string) error {
	verbs := []string{"list", "create", "rotate", "revoke"}
	if len(args) == 0 || !slices.Contains(verbs, args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stdout, adminHelp)
			return nil
		}
		fmt.Fprintln(env.Stderr, "Usage: sealpost admin clients list|create|rotate|revoke --account ID [flags]")
		return errUsage
	}
	verb := args[0]
	fs := newFlagSet(env, "admin clients "+verb, "admin clients "+verb+" --account ID [flags]")
	var cf configFlags
	cf.register(fs)
	accountID := fs.String("account", "", "account id (required)")
	name := fs.String("name", "", "client name (create)")
	role := fs.String("role", "", "role: owner, admin, sender, marketer or auditor (create)")
	scopes := fs.String("scopes", "", "comma-separated scopes narrowing the role (create; default: the role's)")
	clientID := fs.String("client", "", "client id (rotate, revoke)")
	firstParty := fs.Bool("first-party", false, "mark the client first-party: the only clients the OAuth password grant serves (create)")
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	if *accountID == "" || ((verb == "rotate" || verb == "revoke") && *clientID == "") {
		fmt.Fprintln(env.Stderr, "--account is required; rotate and revoke also need --client")
		return errUsage
	}
	admin, actor, closeStore, err := operatorAdmin(ctx, env, &cf, *accountID)
	if err != nil {
		return err
	}
	defer closeStore()
	switch verb {
	case "list":
		clients, err := admin.ListClients(ctx, actor)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT_ID\tNAME\tROLE\tSCOPES\tCREATED\tREVOKED")
		for _, c := range clients {
			revoked := "-"
			if !c.RevokedAt.IsZero() {
				revoked = c.RevokedAt.Format("2006-01-02T15:04:05Z")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.Role, strings.Join(c.Scopes, " "),
				c.CreatedAt.Format("2006-01-02T15:04:05Z"), revoked)
		}
		return tw.Flush()
	case "create":
		var narrowed []string
		if *scopes != "" {
			narrowed = strings.Split(*scopes, ",")
		}
		c, err := admin.CreateClient(ctx, actor, account.ClientSpec{Name: *name, Role: *role, Scopes: narrowed, FirstParty: *firstParty})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "client_id: %s\nclient_secret: %s\n", c.ID, c.Secret)
	case "rotate":
		c, err := admin.RotateClient(ctx, actor, *clientID)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "client_id: %s\nclient_secret: %s\n", c.ID, c.Secret)
	case "revoke":
		if err := admin.RevokeClient(ctx, actor, *clientID); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "revoked %s\n", *clientID)
	}
	return nil
}
