package config

import (
	"bytes"
	"net/url"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// redacted replaces secret values in printed configuration.
const redacted = "[redacted]"

// Redacted returns a copy of c fit to print or log: every non-empty field
// tagged secret:"true" reads "[redacted]", and URLs tagged secret:"url"
// (database.url) keep everything but their password, in the user info
// (postgres://app:[redacted]@db/sealpost) and in password or sslpassword
// query parameters.
func (c Config) Redacted() Config {
	out := c
	redact(reflect.ValueOf(&out).Elem(), fields())
	return out
}

// redact applies the secret tags of fs to the struct v.
func redact(v reflect.Value, fs []field) {
	for _, f := range fs {
		if f.secret == "" {
			continue
		}
		fv := v.FieldByIndex(f.index)
		switch {
		case fv.String() == "":
		case f.secret == "url":
			fv.SetString(redactURL(fv.String()))
		default:
			fv.SetString(redacted)
		}
	}
}

// redactURL hides the password of a URL, leaving it otherwise as written.
// It works on the text rather than through net/url, which would re-escape
// the marker and fails on some connection strings drivers accept.
func redactURL(s string) string {
	schemeEnd := strings.Index(s, "://")
	if schemeEnd < 0 {
		return s
	}
	rest := s[schemeEnd+3:]
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	authority, tail := rest[:authEnd], rest[authEnd:]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if colon := strings.Index(authority[:at], ":"); colon >= 0 && colon < at-1 {
			authority = authority[:colon+1] + redacted + authority[at:]
		}
	}
	return s[:schemeEnd+3] + authority + redactQuery(tail)
}

// redactQuery hides password parameters in the "/path?query#fragment"
// tail of a URL.
func redactQuery(tail string) string {
	q := strings.Index(tail, "?")
	if q < 0 {
		return tail
	}
	query, fragment := tail[q+1:], ""
	if h := strings.Index(query, "#"); h >= 0 {
		query, fragment = query[:h], query[h:]
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if strings.EqualFold(name, "password") || strings.EqualFold(name, "sslpassword") {
			params[i] = name + "=" + redacted
		}
	}
	return tail[:q+1] + strings.Join(params, "&") + fragment
}

// YAML renders c as a YAML document with every key, in the layout of the
// config file, which Load reads back to the same Config. It does not
// redact: print c.Redacted().YAML().
func (c Config) YAML() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	sections := map[string]*yaml.Node{"": root}
	for _, f := range fields() {
		parent := sections[""]
		path := ""
		parts := strings.Split(f.key, ".")
		for _, p := range parts[:len(parts)-1] {
			path += p + "."
			n, ok := sections[path]
			if !ok {
				n = &yaml.Node{Kind: yaml.MappingNode}
				parent.Content = append(parent.Content, scalar("!!str", p), n)
				sections[path] = n
			}
			parent = n
		}
		parent.Content = append(parent.Content, scalar("!!str", parts[len(parts)-1]), c.valueNode(f))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// valueNode renders f's value with its YAML type; sizes are written as
// plain bytes with the readable form as a comment.
func (c Config) valueNode(f field) *yaml.Node {
	text := c.formatField(f)
	switch {
	case f.typ == durationType:
		return scalar("!!str", text)
	case f.typ.Kind() == reflect.Bool:
		return scalar("!!bool", text)
	case f.typ.Kind() == reflect.Int64:
		n := scalar("!!int", text)
		v := reflect.ValueOf(c).FieldByIndex(f.index).Int()
		if human := FormatSize(v); human != text {
			n.LineComment = human
		}
		return n
	case f.typ.Kind() == reflect.Int:
		return scalar("!!int", text)
	default:
		return scalar("!!str", text)
	}
}
