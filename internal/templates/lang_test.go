package templates_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/internal/templates"
)

func compile(t testing.TB, c templates.Content, p templates.Policy) *templates.Compiled {
	t.Helper()
	cp, err := templates.Compile(c, p, templates.Limits{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return cp
}

func TestRender(t *testing.T) {
	t.Parallel()
	data := map[string]any{
		"name": "ada lovelace", "appt": "2026-12-24T09:30:00-05:00", "n": float64(100000000), "price": 12.5,
		"items": []any{"flu shot", "check-up"}, "patient": map[string]any{"first": "Ada"}, "empty": "",
		"note": "<script>alert(1)</script>",
	}
	for _, tc := range []struct {
		name string
		c    templates.Content
		want templates.Rendered
	}{
		{"fields and nested objects render", templates.Content{Subject: "Hi {{.patient.first}}", Text: "Dear {{.name}}"},
			templates.Rendered{Subject: "Hi Ada", Text: "Dear ada lovelace"}},
		{"functions of the allow-list work", templates.Content{Subject: `{{upper .patient.first}} {{title .name}}`,
			Text: `{{join ", " .items}}|{{.empty | default "none"}}|{{truncate 3 .name}}|{{lower "X"}}|{{replace "-" " " "a-b"}}|{{len .items}}|{{index .items 1}}`},
			templates.Rendered{Subject: "ADA Ada Lovelace", Text: "flu shot, check-up|none|ada|x|a b|2|check-up"}},
		{"date formats an RFC 3339 time with a Go layout", templates.Content{Subject: `{{date "Mon Jan 2, 2006 at 3:04 PM" .appt}}`, Text: `{{date "2006-01-02" "2026-01-05"}}`},
			templates.Rendered{Subject: "Thu Dec 24, 2026 at 9:30 AM", Text: "2026-01-05"}},
		{"whole numbers print as integers", templates.Content{Subject: "#{{.n}} ${{.price}}", Text: `{{printf "%.2f" .price}}`},
			templates.Rendered{Subject: "#100000000 $12.5", Text: "12.50"}},
		{"range, with, if and variables work", templates.Content{Subject: "s",
			Text: `{{range $i, $e := .items}}{{$i}}={{$e}};{{end}}{{with .patient}}{{.first}}{{end}}{{if .empty}}x{{else}}y{{end}}{{$p := .patient}}{{$p.first}}{{$.name}}`},
			templates.Rendered{Subject: "s", Text: "0=flu shot;1=check-up;AdayAdaada lovelace"}},
		{"HTML escapes data for its context", templates.Content{Subject: "s", HTML: `<p>{{.note}}</p><a href="/x?q={{.name}}">l</a>`},
			templates.Rendered{Subject: "s", HTML: `<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><a href="/x?q=ada%20lovelace">l</a>`,
				Text: "<script>alert(1)</script>\nl (/x?q=ada%20lovelace)"}},
		{"a text part is generated from the HTML when there is none", templates.Content{Subject: "s", HTML: `<h1>Hello {{.patient.first}}</h1><p>See you</p>`},
			templates.Rendered{Subject: "s", HTML: `<h1>Hello Ada</h1><p>See you</p>`, Text: "Hello Ada\nSee you"}},
		{"line breaks in data do not break the subject", templates.Content{Subject: "a {{.x}} b", Text: "t"},
			templates.Rendered{Subject: "a c Bcc: x b", Text: "t"}},
		{"a loop inside a script prints no extra tokens", templates.Content{Subject: "s", HTML: `<script>var a = [{{range .items}}{{.}},{{end}}];</script>`},
			templates.Rendered{Subject: "s", HTML: `<script>var a = ["flu shot","check-up",];</script>`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := data
			if strings.Contains(tc.c.Subject, ".x") {
				d = map[string]any{"x": "c\r\nBcc: x"}
			}
			got, err := compile(t, tc.c, templates.MissingError).Render(context.Background(), d)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			if got != tc.want {
				t.Errorf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestMissingVariablePolicy(t *testing.T) {
	t.Parallel()
	c := templates.Content{Subject: "Hi {{.name}}", Text: "line one\n  {{.patient.first}} {{upper .gone}}"}
	got, err := compile(t, c, templates.MissingEmpty).Render(context.Background(), map[string]any{})
	if err != nil || got.Subject != "Hi" || got.Text != "line one\n   " {
		t.Errorf("empty policy: got %#v, %v", got, err)
	}
	_, err = compile(t, c, templates.MissingError).Render(context.Background(), map[string]any{"name": "x"})
	var te *templates.Error
	if !errors.As(err, &te) || !errors.Is(err, templates.ErrRender) {
		t.Fatalf("error policy: got %v", err)
	}
	if te.Part != "text" || te.Variable != "patient" || te.Line != 2 || te.Column != 5 {
		t.Errorf("error policy: got %+v", te)
	}
}

func TestPresenceChecksAreLenientUnderTheErrorPolicy(t *testing.T) {
	t.Parallel()
	c := templates.Content{Subject: "s", Text: `{{if .coupon}}c{{end}}{{with .a.b}}w{{end}}{{range .list}}r{{end}}|{{.clinic | default "the clinic"}}|{{default "x" .y.z}}`}
	got, err := compile(t, c, templates.MissingError).Render(context.Background(), nil)
	if err != nil || got.Text != "|the clinic|x" {
		t.Errorf("got %q, %v", got.Text, err)
	}
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    templates.Content
		part string
		line int
		msg  string
	}{
		{"call is not allowed", templates.Content{Subject: "s", Text: "a\n{{call .f}}"}, "text", 2, `function "call" is not allowed`},
		{"an unknown function is refused", templates.Content{Subject: "{{exec .x}}", Text: "t"}, "subject", 1, `function "exec" not defined`},
		{"inserted functions cannot be named", templates.Content{Subject: "s", Text: "{{__sp_lookup . 0}}"}, "text", 1, `not allowed`},
		{"define is not allowed", templates.Content{Subject: "s", Text: `{{define "x"}}y{{end}}`}, "text", 0, "{{define}}"},
		{"template is not allowed", templates.Content{Subject: "s", HTML: `{{template "html"}}`}, "html", 1, "{{template}}"},
		{"an unclosed action is refused with its line", templates.Content{Subject: "s", Text: "a\nb\n{{.x"}, "text", 3, "unclosed action"},
		{"an unterminated range is refused", templates.Content{Subject: "s", HTML: "{{range .x}}"}, "html", 1, "unexpected EOF"},
		{"an ambiguous HTML context is refused", templates.Content{Subject: "s", HTML: `<a href="{{if .x}}/a{{else}}x:/b"{{end}}>`}, "html", 0, "branches end in different contexts"},
		{"a body is required", templates.Content{Subject: "s"}, "text", 0, "text or html is required"},
		{"a subject source is bounded", templates.Content{Subject: strings.Repeat("x", 2001), Text: "t"}, "subject", 0, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := templates.Compile(tc.c, templates.MissingError, templates.Limits{})
			var te *templates.Error
			if !errors.As(err, &te) || !errors.Is(err, templates.ErrSyntax) {
				t.Fatalf("got %v, want a syntax error", err)
			}
			if te.Part != tc.part || te.Line != tc.line || !strings.Contains(te.Message, tc.msg) {
				t.Errorf("got %+v, want part %s line %d message with %q", te, tc.part, tc.line, tc.msg)
			}
		})
	}
}

func TestRenderLimits(t *testing.T) {
	t.Parallel()
	big := make([]any, 2000)
	data := map[string]any{"list": big, "s": strings.Repeat("x", 1000)}
	for _, tc := range []struct {
		name   string
		c      templates.Content
		limits templates.Limits
		msg    string
	}{
		{"a loop that writes nothing still ends", templates.Content{Subject: "s", Text: "{{range .list}}{{range $.list}}{{end}}{{end}}x"},
			templates.Limits{Timeout: time.Hour, MaxSteps: 10_000}, "too many steps"},
		{"a range over a huge number ends", templates.Content{Subject: "s", Text: "{{range 1000000000000}}{{end}}"},
			templates.Limits{Timeout: time.Hour, MaxSteps: 10_000}, "too many steps"},
		{"output is capped", templates.Content{Subject: "s", HTML: "{{range .list}}{{$.s}}{{end}}"},
			templates.Limits{MaxOutput: 100_000}, "too large"},
		{"rendering is bounded in time", templates.Content{Subject: "s", Text: "{{range .list}}{{range $.list}}{{end}}{{end}}"},
			templates.Limits{Timeout: time.Millisecond, MaxSteps: 1 << 40}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cp, err := templates.Compile(tc.c, templates.MissingError, tc.limits)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cp.Render(context.Background(), data)
			if !errors.Is(err, templates.ErrLimit) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want a limit error with %q", err, tc.msg)
			}
		})
	}
}

func TestFunctionErrorsDoNotEchoData(t *testing.T) {
	t.Parallel()
	cp := compile(t, templates.Content{Subject: "s", Text: "\n  {{date \"2006\" .dob}}"}, templates.MissingError)
	_, err := cp.Render(context.Background(), map[string]any{"dob": "SECRET-VALUE"})
	var te *templates.Error
	if !errors.As(err, &te) || te.Line != 2 || strings.Contains(err.Error(), "SECRET") || !strings.Contains(te.Message, "date:") {
		t.Errorf("got %+v", err)
	}
}

func BenchmarkRender(b *testing.B) {
	cp := compile(b, templates.Content{
		Subject: "Your appointment on {{date \"Jan 2\" .appt}}",
		Text:    "Dear {{.patient.first}},\n{{range .items}}- {{.}}\n{{end}}See you at {{.clinic | default \"the clinic\"}}.",
		HTML:    `<p>Dear {{.patient.first}},</p><ul>{{range .items}}<li>{{.}}</li>{{end}}</ul><a href="https://x.example/a?id={{.id}}">Manage</a>`,
	}, templates.MissingError)
	data := map[string]any{"patient": map[string]any{"first": "Ada"}, "appt": "2026-12-24T09:30:00Z", "id": float64(12345),
		"items": []any{"bring your card", "arrive early", "fast for 8 hours"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cp.Render(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}
