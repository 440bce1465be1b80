package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

const (
	examplePath = "../../sealpost.example.yaml"
	docsPath    = "../../docs/config.md"
)

// The example file must stay equal to the defaults, so operators who copy
// it get exactly what they would get without it.
func TestExampleFileEqualsDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(examplePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(c, Default()); d != nil {
		t.Fatalf("%s drifted from Default(): %v", examplePath, d)
	}
}

func TestExampleFileListsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	set, err := c.decodeYAML(examplePath, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !slices.Contains(set, k) {
			t.Errorf("%s does not set %s", examplePath, k)
		}
	}
}

func TestDocsDescribeEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, f := range fields() {
		for _, name := range []string{"`" + f.key + "`", "`" + f.env + "`"} {
			if !strings.Contains(doc, name) {
				t.Errorf("%s does not mention %s", docsPath, name)
			}
		}
	}
}
