package templates

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// allowed is every function a template may name: the safe built-ins of
// text/template (call is not among them: it would run arbitrary
// functions reached through the data) and Sealpost's own set below.
var allowed = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "index": true, "slice": true, "print": true, "printf": true, "println": true,
	"html": true, "js": true, "urlquery": true,
	"upper": true, "lower": true, "title": true, "trim": true, "default": true, "join": true, "date": true,
	"truncate": true, "replace": true, "contains": true,
}

// funcs is the function map of one instance: the allow-listed functions
// and the ones the rewriter inserts, bound to st.
func (st *execState) funcs() template.FuncMap {
	return template.FuncMap{
		fnLookup: st.lookup,
		fnTick:   st.tick,
		fnPrint:  printable,
		"upper":  func(v any) string { return strings.ToUpper(str(v)) },
		"lower":  func(v any) string { return strings.ToLower(str(v)) },
		"title":  func(v any) string { return title(str(v)) },
		"trim":   func(v any) string { return strings.TrimSpace(str(v)) },
		"default": func(def, v any) any {
			if empty(v) {
				return def
			}
			return v
		},
		"join":     join,
		"date":     date,
		"truncate": truncate,
		"replace":  func(old, repl string, v any) string { return strings.ReplaceAll(str(v), old, repl) },
		"contains": func(sub string, v any) bool { return strings.Contains(str(v), sub) },
	}
}

// printable prints a missing or null value as nothing.
func printable(v any) any {
	if v == nil {
		return ""
	}
	return v
}

// str is the text of a data value.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprint(x)
	}
}

func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// title upper-cases the first letter of each word.
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if unicode.IsSpace(prev) || prev == '-' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}

// join joins a list's items: {{join ", " .items}}.
func join(sep string, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = str(e)
		}
		return strings.Join(parts, sep), nil
	case string:
		return x, nil
	}
	return "", badArg("join", "the value is not a list")
}

// dateLayouts are what date accepts as input, besides Unix seconds.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"}

// date formats a time with a Go layout: {{date "Jan 2, 2006" .appt}}.
// The value is an RFC 3339 date-time (its offset is kept), a date
// (2006-01-02) or Unix seconds.
func date(layout string, v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case int64:
		return time.Unix(x, 0).UTC().Format(layout), nil
	case float64:
		return time.Unix(int64(x), 0).UTC().Format(layout), nil
	case string:
		for _, l := range dateLayouts {
			if t, err := time.Parse(l, x); err == nil {
				return t.Format(layout), nil
			}
		}
	}
	return "", badArg("date", "the value is not an RFC 3339 date-time, a date (2006-01-02) or Unix seconds")
}

// truncate keeps the first n characters: {{truncate 40 .note}}.
func truncate(n int, v any) (string, error) {
	if n < 0 {
		return "", badArg("truncate", "the length is negative")
	}
	s := str(v)
	if utf8.RuneCountInString(s) <= n {
		return s, nil
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j], nil
		}
		i++
	}
	return s, nil
}
