package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// field is one settable leaf of Config, found by reflection so that the
// file, the environment, flags, redaction and printing all agree on the
// same set of keys without a hand-kept list.
type field struct {
	key    string // dotted yaml path, "http.tls.cert_file"
	env    string // "SEALPOST_HTTP_TLS_CERT_FILE"
	index  []int  // reflect field index path from Config
	typ    reflect.Type
	secret string // "", "true" or "url"
}

// envPrefix starts every environment variable that configures Sealpost.
const envPrefix = "SEALPOST_"

var durationType = reflect.TypeFor[time.Duration]()

// fields returns Config's leaves in declaration order. Computed once; the
// result is never modified.
var fields = sync.OnceValue(func() []field {
	var out []field
	collectFields(reflect.TypeFor[Config](), "", nil, &out)
	return out
})

// collectFields appends the leaves of struct type t. It panics on a field
// the loaders cannot handle, so a mistake in Config fails every test.
func collectFields(t reflect.Type, prefix string, index []int, out *[]field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			panic(fmt.Sprintf("config: field %s.%s needs a yaml tag", t.Name(), sf.Name))
		}
		key := prefix + name
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct {
			collectFields(sf.Type, key+".", idx, out)
			continue
		}
		switch {
		case sf.Type == durationType:
		case sf.Type.Kind() == reflect.String, sf.Type.Kind() == reflect.Bool,
			sf.Type.Kind() == reflect.Int, sf.Type.Kind() == reflect.Int64:
		default:
			panic(fmt.Sprintf("config: key %s has unsupported type %s", key, sf.Type))
		}
		secret := sf.Tag.Get("secret")
		if secret != "" && (sf.Type.Kind() != reflect.String || (secret != "true" && secret != "url")) {
			panic(fmt.Sprintf("config: key %s: secret tag %q needs a string field and the value true or url", key, secret))
		}
		*out = append(*out, field{
			key:    key,
			env:    envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
			index:  idx,
			typ:    sf.Type,
			secret: secret,
		})
	}
}

// lookupField returns the field with the dotted key.
func lookupField(key string) (field, bool) {
	for _, f := range fields() {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// Keys returns every configuration key in declaration order, e.g.
// "data_dir", "log.level", …, "http.tls.cert_file".
func Keys() []string {
	fs := fields()
	keys := make([]string, len(fs))
	for i, f := range fs {
		keys[i] = f.key
	}
	return keys
}

// Set sets the setting named by the dotted key (as in the YAML file, e.g.
// "http.addr") from its textual form, as a flag or environment variable
// would give it. The error names the key when it is unknown or the value
// does not parse. Set does not validate; call Validate when done.
func (c *Config) Set(key, value string) error {
	f, ok := lookupField(key)
	if !ok {
		return fmt.Errorf("unknown config key %q%s", key, suggest(key, Keys()))
	}
	if err := c.setField(f, value); err != nil {
		return fmt.Errorf("config key %s: %w", key, err)
	}
	return nil
}

// setField parses value for f and stores it; the error does not name the
// key, so each source can say where the value came from.
func (c *Config) setField(f field, value string) error {
	v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	switch {
	case f.typ == durationType:
		d, err := parseDuration(value)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case f.typ.Kind() == reflect.String:
		v.SetString(value)
	case f.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", value)
		}
		v.SetBool(b)
	case f.typ.Kind() == reflect.Int:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, strconv.IntSize)
		if err != nil {
			return fmt.Errorf("invalid integer %q", value)
		}
		v.SetInt(n)
	case f.typ.Kind() == reflect.Int64:
		n, err := ParseSize(value)
		if err != nil {
			return err
		}
		v.SetInt(n)
	}
	return nil
}

// formatField returns the textual form of f's value, which setField
// accepts back.
func (c *Config) formatField(f field) string {
	v := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	switch {
	case f.typ == durationType:
		return formatDuration(time.Duration(v.Int()))
	case f.typ.Kind() == reflect.String:
		return v.String()
	case f.typ.Kind() == reflect.Bool:
		return strconv.FormatBool(v.Bool())
	default:
		return strconv.FormatInt(v.Int(), 10)
	}
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a Go duration such as 30s or 1m)", s)
	}
	return d, nil
}

// formatDuration is time.Duration.String without the trailing zero units
// ("1m" rather than "1m0s"), which operators find easier to read.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// sizeUnits maps the accepted unit suffixes (lower-cased) to bytes. The
// binary units (KiB) are the ones to prefer; the decimal ones (KB) mean
// what the SI says, powers of 1000.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kib": KiB, "mib": MiB, "gib": GiB, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseSize parses a byte size: a non-negative decimal integer of bytes,
// optionally followed by a unit, B, KiB, MiB, GiB, TiB (powers of 1024)
// or KB, MB, GB, TB (powers of 1000), case-insensitive, with or without a
// space: "1048576", "512KiB", "10 MiB".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if i == 0 || !ok {
		return 0, fmt.Errorf("invalid size %q (want bytes, or a number with a unit such as 512KiB or 10MiB)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > (1<<63-1)/unit {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * unit, nil
}

// FormatSize renders n bytes in the largest binary unit that divides it
// exactly ("10MiB", "1536KiB", "1000"), a form ParseSize reads back.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to
// name when it is close enough to be a likely typo, else "". Sections both
// share are set aside first, so "http.adress" is compared as "adress"
// against "addr": a typo is judged by the part that differs.
func suggest(name string, candidates []string) string {
	if len(name) > 128 {
		return "" // not a typo, and not worth quadratic work
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		a, b := trimCommonSections(name, c)
		d := editDistance(a, b)
		if cutShort(a, b) || cutShort(b, a) {
			d = 1
		}
		if d > max(len(a), len(b))/2+1 {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// cutShort reports whether short is long cut short within its last
// section ("cert" for "cert_file", not "queue" for "queue.max_workers").
func cutShort(short, long string) bool {
	return len(short) >= 3 && len(short) < len(long) && strings.HasPrefix(long, short) &&
		!strings.Contains(long[len(short):], ".")
}

// trimCommonSections drops the longest common prefix of a and b that ends
// with a separator ('.' in keys, '_' in variable names).
func trimCommonSections(a, b string) (string, string) {
	cut := 0
	for i := 0; i < len(a) && i < len(b) && a[i] == b[i]; i++ {
		if a[i] == '.' || a[i] == '_' {
			cut = i + 1
		}
	}
	return a[cut:], b[cut:]
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
