package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvConfigFile names the environment variable that holds the config file
// path. The command reads it; Load skips it among the overrides.
const EnvConfigFile = "SEALPOST_CONFIG"

// envTestPrefix starts variables reserved for tests (for example
// SEALPOST_TEST_POSTGRES), which Load ignores.
const envTestPrefix = "SEALPOST_TEST_"

// Load returns Default overlaid with the YAML file at path (none when path
// is "") and then with the SEALPOST_* variables in env, given in
// os.Environ form ("KEY=value"); when a variable appears twice the later
// one wins. Flags come last: apply them with Set, then call Validate —
// Load does not validate, since a flag may still fix a value.
//
// The file is strict: an unknown key, a value of the wrong shape or type,
// a duplicated key or a second YAML document is an error naming the file,
// line and dotted key. An unknown SEALPOST_* variable is an error naming
// it, except SEALPOST_CONFIG and those starting with SEALPOST_TEST_.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
		if _, err := cfg.decodeYAML(path, data); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.applyEnv(env); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeYAML overlays the YAML document in data onto c and returns the
// keys it set. name is used in errors.
func (c *Config) decodeYAML(name string, data []byte) ([]string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file changes nothing
		}
		return nil, fmt.Errorf("config file %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: want exactly one YAML document", name)
	}
	d := decoder{cfg: c, file: name}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	if err := d.mapping(doc.Content[0], ""); err != nil {
		return nil, err
	}
	return d.set, nil
}

// decoder walks a YAML node tree against the field table.
type decoder struct {
	cfg  *Config
	file string
	set  []string
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("config file %s line %d: %s", d.file, n.Line, fmt.Sprintf(format, args...))
}

// mapping decodes the mapping node n holding the keys under prefix ("" at
// the top, "http." below http).
func (d *decoder) mapping(n *yaml.Node, prefix string) error {
	n = resolveAlias(n)
	if isNull(n) {
		return nil // "http:" with nothing under it keeps the defaults
	}
	if n.Kind != yaml.MappingNode {
		where := "the top level"
		if prefix != "" {
			where = fmt.Sprintf("key %q", strings.TrimSuffix(prefix, "."))
		}
		return d.errorf(n, "%s wants a mapping of keys, not %s", where, describe(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolveAlias(n.Content[i]), resolveAlias(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return d.errorf(kn, "keys under %q must be plain names", strings.TrimSuffix(prefix, "."))
		}
		key := prefix + kn.Value
		if seen[kn.Value] {
			return d.errorf(kn, "duplicate key %q", key)
		}
		seen[kn.Value] = true
		if err := d.value(kn, vn, key); err != nil {
			return err
		}
	}
	return nil
}

// value decodes the value node vn of the dotted key, whose key node kn
// gives the line for an unknown key.
func (d *decoder) value(kn, vn *yaml.Node, key string) error {
	if f, ok := lookupField(key); ok {
		if vn.Kind != yaml.ScalarNode {
			return d.errorf(vn, "%s: want a single value, not %s", key, describe(vn))
		}
		text := vn.Value
		if isNull(vn) {
			text = ""
		}
		if err := d.cfg.setField(f, text); err != nil {
			return d.errorf(vn, "%s: %v", key, err)
		}
		d.set = append(d.set, key)
		return nil
	}
	if isSection(key) {
		return d.mapping(vn, key+".")
	}
	return d.errorf(kn, "unknown key %q%s", key, suggest(key, Keys()))
}

// isSection reports whether key names a group of settings ("http",
// "http.tls") rather than one setting.
func isSection(key string) bool {
	for _, f := range fields() {
		if strings.HasPrefix(f.key, key+".") {
			return true
		}
	}
	return false
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("the value %q", n.Value)
	}
}

// applyEnv overlays the SEALPOST_* variables of env onto c.
func (c *Config) applyEnv(env []string) error {
	byEnv := make(map[string]field, len(fields()))
	names := make([]string, 0, len(fields()))
	for _, f := range fields() {
		byEnv[f.env] = f
		names = append(names, f.env)
	}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || name == EnvConfigFile || strings.HasPrefix(name, envTestPrefix) {
			continue
		}
		f, ok := byEnv[name]
		if !ok {
			return fmt.Errorf("unknown environment variable %s%s", name, suggest(name, names))
		}
		if err := c.setField(f, value); err != nil {
			return fmt.Errorf("environment variable %s (%s): %w", name, f.key, err)
		}
	}
	return nil
}
