package cli

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/sealpost/sealpost/internal/account"
)

// runUsers manages an account's users from the host (audited as the
// platform operator, like runClients).
func runUsers(ctx context.Context, env Env, args []string) error {
	verbs := []string{"list", "create", "update"}
	if len(args) == 0 || !slices.Contains(verbs, args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(env.Stdout, adminHelp)
			return nil
		}
		fmt.Fprintln(env.Stderr, "Usage: sealpost admin users list|create|update --account ID [flags]")
		return errUsage
	}
	verb := args[0]
	fs := newFlagSet(env, "admin users "+verb, "admin users "+verb+" --account ID [flags]")
	var cf configFlags
	cf.register(fs)
	accountID := fs.String("account", "", "account id (required)")
	email := fs.String("email", "", "email address (create)")
	role := fs.String("role", "", "role: owner, admin, sender, marketer or auditor (create, update)")
	userID := fs.String("user", "", "user id (update)")
	disabled := optionalBool{}
	fs.Var(&disabled, "disabled", "true disables the user, false enables them (update)")
	unlock := fs.Bool("unlock", false, "clear the user's failed sign-ins and lift a lockout (update)")
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	if *accountID == "" || (verb == "update" && *userID == "") {
		fmt.Fprintln(env.Stderr, "--account is required; update also needs --user")
		return errUsage
	}
	admin, actor, closeStore, err := operatorAdmin(ctx, env, &cf, *accountID)
	if err != nil {
		return err
	}
	defer closeStore()
	switch verb {
	case "list":
		users, err := admin.ListUsers(ctx, actor)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER_ID\tEMAIL\tROLE\tDISABLED\tLOCKED\tMFA\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%t\t%s\n", u.ID, u.Email, u.Role, u.Disabled, u.Locked, u.MFAEnabled,
				u.CreatedAt.Format("2006-01-02T15:04:05Z"))
		}
		return tw.Flush()
	case "create":
		u, err := admin.CreateUser(ctx, actor, *email, *role)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "user_id: %s\nemail: %s\ninitial_password: %s\n", u.ID, u.Email, u.Password)
	case "update":
		var ch account.UserChange
		if *role != "" {
			ch.Role = role
		}
		ch.Disabled, ch.Unlock = disabled.value, *unlock
		u, err := admin.UpdateUser(ctx, actor, *userID, ch)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "user_id: %s\nrole: %s\ndisabled: %t\nlocked: %t\n", u.ID, u.Role, u.Disabled, u.Locked)
	}
	return nil
}

// optionalBool is a bool flag that remembers whether it was given.
type optionalBool struct{ value *bool }

var _ flag.Value = (*optionalBool)(nil)

func (o *optionalBool) String() string {
	if o == nil || o.value == nil {
		return ""
	}
	return strconv.FormatBool(*o.value)
}

func (o *optionalBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	o.value = &b
	return nil
}

// IsBoolFlag lets "--disabled" alone mean true.
func (o *optionalBool) IsBoolFlag() bool { return true }
