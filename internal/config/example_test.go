package config_test

import (
	"fmt"
	"log"

	"github.com/sealpost/sealpost/internal/config"
)

// Build the effective configuration the way the sealpost command does:
// defaults, then the file (none here), then SEALPOST_* variables, then
// flags, then validation.
func ExampleLoad() {
	env := []string{
		"SEALPOST_HTTP_ADDR=:9000",
		"SEALPOST_HTTP_MAX_BODY_BYTES=512KiB",
		"SEALPOST_TEST_POSTGRES=ignored",
	}
	cfg, err := config.Load("", env)
	if err != nil {
		log.Fatal(err)
	}
	if err := cfg.Set("data_dir", "/var/lib/sealpost"); err != nil { // --data-dir
		log.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.HTTP.Addr, cfg.HTTP.MaxBodyBytes)
	fmt.Println(cfg.DatabaseURL())
	fmt.Println(cfg.MasterKeyFile())
	// Output:
	// :9000 524288
	// sqlite:///var/lib/sealpost/sealpost.db
	// /var/lib/sealpost/master.key
}

func ExampleConfig_Validate() {
	cfg := config.Default()
	cfg.HTTP.Addr = "localhost"
	cfg.Log.Level = "verbose"
	fmt.Println(cfg.Validate())
	// Output:
	// invalid configuration: log.level: must be one of debug, info, warn, error, got "verbose"; http.addr: must be host:port (such as 127.0.0.1:8080 or :8080), got "localhost"
}
