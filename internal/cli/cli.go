// Package cli is the sealpost command line: it parses subcommands and
// flags, loads configuration and calls into package app. It holds no
// domain logic, so every command is testable in-process through Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/sealpost/sealpost/internal/app"
	"github.com/sealpost/sealpost/internal/config"
	"github.com/sealpost/sealpost/internal/store"
)

// Env is what a command sees of its process: arguments, environment and
// standard streams. Tests build one by hand.
type Env struct {
	Args    []string // without the program name
	Environ []string
	Stdout  io.Writer
	Stderr  io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "start the platform (HTTP API, job queue); bootstraps an empty store", runServe},
		{"migrate", "apply pending database migrations and exit", runMigrate},
		{"admin", "administration: bootstrap", runAdmin},
		{"config", "configuration: print the effective config (secrets redacted)", runConfig},
		{"audit", "audit log: verify the hash chains", runAudit},
		{"bench", "run load benchmarks against a scratch database", runBench},
		{"version", "print the version and the inventory of compiled-in modules", runVersion},
	}
}

// errUsage marks errors already explained by printed usage.
var errUsage = errors.New("usage")

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, env Env) int {
	if len(env.Args) == 0 || env.Args[0] == "-h" || env.Args[0] == "--help" || env.Args[0] == "help" {
		usage(env.Stdout)
		if len(env.Args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != env.Args[0] {
			continue
		}
		err := c.run(ctx, env, env.Args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(env.Stderr, "sealpost %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.Stderr, "sealpost: unknown command %q\n\n", env.Args[0])
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Sealpost: secure email and patient engagement for healthcare.")
	fmt.Fprintln(w, "\nUsage: sealpost <command> [flags]   (sealpost <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
}

// configFlags are the flags every store-touching command accepts.
type configFlags struct {
	file     string
	dataDir  string
	database string
	sets     multiFlag
}

func (c *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "config file (YAML); default $SEALPOST_CONFIG")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (data_dir); default ./data")
	fs.StringVar(&c.database, "database-url", "", "database URL (database.url): sqlite:PATH or postgres://...")
	fs.Var(&c.sets, "set", "override one config key, key=value (repeatable), e.g. --set http.addr=:9000")
}

// load builds the effective configuration: defaults < file < environment
// < flags, then validates it naming any bad key.
func (c *configFlags) load(env Env, extra map[string]string) (config.Config, error) {
	file := c.file
	if file == "" {
		file = lookupEnv(env.Environ, "SEALPOST_CONFIG")
	}
	cfg, err := config.Load(file, env.Environ)
	if err != nil {
		return config.Config{}, err
	}
	overrides := map[string]string{}
	for _, kv := range c.sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return config.Config{}, fmt.Errorf("--set %q: want key=value", kv)
		}
		overrides[k] = v
	}
	if c.dataDir != "" {
		overrides["data_dir"] = c.dataDir
	}
	if c.database != "" {
		overrides["database.url"] = c.database
	}
	for k, v := range extra {
		overrides[k] = v
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := cfg.Set(k, overrides[k]); err != nil {
			return config.Config{}, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, err
	}
	return cfg, nil
}

// openStore loads the configuration and opens its migrated store.
func (c *configFlags) openStore(ctx context.Context, env Env, progress func(string)) (*store.Store, error) {
	cfg, err := c.load(env, nil)
	if err != nil {
		return nil, err
	}
	return app.OpenStore(ctx, cfg, progress)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// newFlagSet returns a flag set that prints its usage to env.Stdout on
// --help and to env.Stderr on errors.
func newFlagSet(env Env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("sealpost "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sealpost %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// subcommand checks that args start with verb, the one subcommand of a
// command group. "--help" prints help and ends the command successfully
// (flag.ErrHelp); anything else prints the usage line and fails.
func subcommand(env Env, args []string, verb, help string) error {
	if len(args) > 0 && args[0] == verb {
		return nil
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(env.Stdout, help)
		return flag.ErrHelp
	}
	usage, _, _ := strings.Cut(help, "\n")
	fmt.Fprintln(env.Stderr, usage)
	return errUsage
}

// parse parses args; --help prints usage to stdout and returns flag.ErrHelp.
func parse(env Env, fs *flag.FlagSet, args []string) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return nil
}

// Main runs the process's command line.
func Main() int {
	ctx := context.Background()
	return Run(ctx, Env{Args: os.Args[1:], Environ: os.Environ(), Stdout: os.Stdout, Stderr: os.Stderr})
}
