package templates

import (
	"context"
	"errors"
	"fmt"
	htemplate "html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	ttemplate "text/template"
	"text/template/parse"
	"time"

	"github.com/sealpost/sealpost/internal/mail"
)

// Content is the source of one version: Go templates for the subject and
// the text part (text/template) and the HTML part (html/template).
type Content struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// Rendered is a version rendered with data. Text is generated from HTML
// when the version has no text source.
type Rendered struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// Policy says what a variable absent from the data renders as.
type Policy string

// Missing-variable policies.
const (
	MissingError Policy = "error" // rendering fails, naming the variable
	MissingEmpty Policy = "empty" // the variable renders as nothing
)

// Source limits, checked when a version is created.
const (
	MaxSubjectSource = 2000
	MaxBodySource    = 512 << 10
)

// Limits bound one render. The zero value of a field means its default.
type Limits struct {
	// MaxOutput caps the rendered subject, text and HTML together
	// (default 2 MiB).
	MaxOutput int
	// Timeout caps the time of one render (default 500ms).
	Timeout time.Duration
	// MaxSteps caps variable look-ups plus loop iterations (default
	// 200,000), so a loop that writes nothing still ends.
	MaxSteps int
}

func (l Limits) withDefaults() Limits {
	if l.MaxOutput <= 0 {
		l.MaxOutput = 2 << 20
	}
	if l.Timeout <= 0 {
		l.Timeout = 500 * time.Millisecond
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = 200_000
	}
	return l
}

// Sentinels an *Error unwraps to.
var (
	ErrSyntax = errors.New("templates: invalid template")
	ErrRender = errors.New("templates: render failed")
	ErrLimit  = errors.New("templates: render limit exceeded")
)

// Error is a template problem at a place in one part. Message names the
// rule or variable, never a data value.
type Error struct {
	Part     string // subject, text or html
	Line     int    // 1-based; 0 when unknown
	Column   int    // 1-based; 0 when unknown
	Variable string // the missing variable, when that is the cause
	Message  string
	kind     error
}

func (e *Error) Error() string {
	where := e.Part
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
		if e.Column > 0 {
			where += ":" + strconv.Itoa(e.Column)
		}
	}
	return where + ": " + e.Message
}

// Unwrap returns ErrSyntax, ErrRender or ErrLimit.
func (e *Error) Unwrap() error { return e.kind }

// Compiled is a validated version ready to render, safe for concurrent
// use.
type Compiled struct {
	src    Content
	policy Policy
	limits Limits
	pool   sync.Pool
}

// Compile validates c: it parses each part, refuses anything outside the
// language (functions not in the allow-list, {{define}}, {{block}},
// {{template}}) and checks the HTML part's escaping contexts, so that a
// stored version can always be rendered.
func Compile(c Content, policy Policy, limits Limits) (*Compiled, error) {
	if policy != MissingError && policy != MissingEmpty {
		return nil, &Error{Part: "missing_variables", Message: "must be error or empty", kind: ErrSyntax}
	}
	for _, p := range []struct {
		part, src string
		max       int
	}{{"subject", c.Subject, MaxSubjectSource}, {"text", c.Text, MaxBodySource}, {"html", c.HTML, MaxBodySource}} {
		if len(p.src) > p.max {
			return nil, &Error{Part: p.part, Message: fmt.Sprintf("at most %d bytes", p.max), kind: ErrSyntax}
		}
	}
	if c.Text == "" && c.HTML == "" {
		return nil, &Error{Part: "text", Message: "text or html is required", kind: ErrSyntax}
	}
	cp := &Compiled{src: c, policy: policy, limits: limits.withDefaults()}
	in, err := cp.build()
	if err != nil {
		return nil, err
	}
	// html/template works out escaping contexts on first execution: do it
	// now, with no data, so an ill-formed context fails at create time.
	if c.HTML != "" {
		in.st.reset(context.Background(), MissingEmpty, cp.limits)
		err := in.html.Execute(io.Discard, map[string]any{})
		var he *htemplate.Error
		if errors.As(err, &he) {
			msg, _, _ := strings.Cut(he.Description, ": {") // drop the escaper's internal state
			return nil, &Error{Part: "html", Line: he.Line, Message: msg, kind: ErrSyntax}
		}
	}
	cp.pool.Put(in)
	return cp, nil
}

// Render renders the version with data (JSON-shaped: objects, arrays,
// strings, numbers, booleans, null), within the limits.
func (c *Compiled) Render(ctx context.Context, data map[string]any) (Rendered, error) {
	in, _ := c.pool.Get().(*instance)
	if in == nil {
		var err error
		if in, err = c.build(); err != nil {
			return Rendered{}, err
		}
	}
	defer c.pool.Put(in)
	in.st.reset(ctx, c.policy, c.limits)
	root := normalize(data)
	if root == nil {
		root = map[string]any{}
	}
	var out Rendered
	var err error
	if out.Subject, err = in.run("subject", c.src.Subject, func(w io.Writer) error { return in.subject.Execute(w, root) }); err != nil {
		return Rendered{}, err
	}
	// RFC 5322 §2.2: a header field is one line; data may not break it.
	out.Subject = strings.Join(strings.Fields(out.Subject), " ")
	if c.src.Text != "" {
		if out.Text, err = in.run("text", c.src.Text, func(w io.Writer) error { return in.text.Execute(w, root) }); err != nil {
			return Rendered{}, err
		}
	}
	if c.src.HTML != "" {
		if out.HTML, err = in.run("html", c.src.HTML, func(w io.Writer) error { return in.html.Execute(w, root) }); err != nil {
			return Rendered{}, err
		}
		if c.src.Text == "" {
			out.Text = mail.HTMLToText(out.HTML)
		}
	}
	return out, nil
}

// instance is one set of parsed parts with the state its functions
// share; the pool hands it to one render at a time.
type instance struct {
	st            *execState
	subject, text *ttemplate.Template
	html          *htemplate.Template
}

func (c *Compiled) build() (*instance, error) {
	st := &execState{}
	fm := st.funcs()
	in := &instance{st: st}
	var err error
	if in.subject, err = parseText("subject", c.src.Subject, fm); err != nil {
		return nil, err
	}
	if in.text, err = parseText("text", c.src.Text, fm); err != nil {
		return nil, err
	}
	h, err := htemplate.New("html").Funcs(htemplate.FuncMap(fm)).Parse(c.src.HTML)
	if err != nil {
		return nil, parseError("html", err)
	}
	if err := checkAndRewrite("html", c.src.HTML, len(h.Templates()), h.Tree); err != nil {
		return nil, err
	}
	in.html = h
	return in, nil
}

func parseText(part, src string, fm ttemplate.FuncMap) (*ttemplate.Template, error) {
	t, err := ttemplate.New(part).Funcs(fm).Parse(src)
	if err != nil {
		return nil, parseError(part, err)
	}
	if err := checkAndRewrite(part, src, len(t.Templates()), t.Tree); err != nil {
		return nil, err
	}
	return t, nil
}

// checkAndRewrite refuses associated templates and checks and rewrites
// the tree (see rewriter).
func checkAndRewrite(part, src string, associated int, tree *parse.Tree) error {
	if associated > 1 {
		return &Error{Part: part, Message: "{{define}} and {{block}} are not allowed", kind: ErrSyntax}
	}
	if tree == nil || tree.Root == nil {
		return nil
	}
	rw := rewriter{part: part, src: src}
	return rw.list(tree.Root)
}

// run executes one part into a capped buffer and turns failures into
// *Error.
func (in *instance) run(part, src string, exec func(io.Writer) error) (string, error) {
	var b strings.Builder
	err := exec(&capWriter{st: in.st, b: &b})
	if err == nil {
		return b.String(), nil
	}
	return "", in.st.explain(part, src, err)
}

// parseMessage picks the line and message out of a text/template error
// ("template: NAME:LINE: MESSAGE" or "template: NAME:LINE:COL: ...").
var parseMessage = regexp.MustCompile(`^template: [a-z]+:(\d+):(?:(\d+):)? ?(.*)$`)

func parseError(part string, err error) error {
	e := &Error{Part: part, Message: "invalid template", kind: ErrSyntax}
	if m := parseMessage.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, _ = strconv.Atoi(m[2])
		e.Message = m[3]
	}
	return e
}

// position turns a byte offset of src into a 1-based line and column.
func position(src string, pos int) (line, col int) {
	if pos > len(src) {
		pos = len(src)
	}
	before := src[:pos]
	line = 1 + strings.Count(before, "\n")
	col = 1 + len(before) - (strings.LastIndexByte(before, '\n') + 1)
	return line, col
}
