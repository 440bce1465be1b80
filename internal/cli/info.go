package cli

import (
	"context"

	"github.com/sealpost/sealpost/internal/buildinfo"
)

func runConfig(ctx context.Context, env Env, args []string) error {
	if err := subcommand(env, args, "print", "Usage: sealpost config print [--config FILE] [--data-dir DIR] [--set key=value]\n\nPrints the effective configuration (defaults < file < SEALPOST_* env < flags) with secrets redacted."); err != nil {
		return err
	}
	fs := newFlagSet(env, "config print", "config print [--config FILE] [--data-dir DIR] [--set key=value]")
	var cf configFlags
	cf.register(fs)
	if err := parse(env, fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load(env, nil)
	if err != nil {
		return err
	}
	out, err := cfg.Redacted().YAML()
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(out)
	return err
}

func runVersion(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "version", "version")
	if err := parse(env, fs, args); err != nil {
		return err
	}
	return buildinfo.WriteInventory(env.Stdout)
}
