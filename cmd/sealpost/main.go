// Command sealpost is the single Sealpost binary: the server and its
// operator tools. See `sealpost --help`.
package main

import (
	"os"

	"github.com/sealpost/sealpost/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
