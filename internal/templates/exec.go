package templates

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// execState is what the inserted functions of one instance share during
// one render.
type execState struct {
	ctx      context.Context
	policy   Policy
	deadline time.Time
	steps    int
	maxSteps int
	out      int
	maxOut   int
}

func (st *execState) reset(ctx context.Context, p Policy, l Limits) {
	*st = execState{ctx: ctx, policy: p, deadline: time.Now().Add(l.Timeout), maxSteps: l.MaxSteps, maxOut: l.MaxOutput}
}

var (
	errSteps   = errors.New("the template takes too many steps")
	errTimeout = errors.New("the template takes too long to render")
	errOutput  = errors.New("the rendered output is too large")
)

// step counts one unit of work and checks the deadline every so often.
func (st *execState) step() error {
	st.steps++
	if st.steps > st.maxSteps {
		return errSteps
	}
	if st.steps%256 == 0 {
		if err := st.ctx.Err(); err != nil {
			return errTimeout
		}
		if time.Now().After(st.deadline) {
			return errTimeout
		}
	}
	return nil
}

// missingError is a variable absent from the data under MissingError.
type missingError struct {
	name string
	pos  int
}

func (e *missingError) Error() string { return "missing variable " + e.name }

// notObjectError is a field access on a value that is not an object.
type notObjectError struct {
	name string
	pos  int
}

func (e *notObjectError) Error() string { return e.name + " is not an object" }

// lookup reads path from recv, a value of the data; only objects (maps)
// are looked into, so nothing but the data is reachable.
func (st *execState) lookup(recv any, pos int, lenient bool, path ...string) (any, error) {
	if err := st.step(); err != nil {
		return nil, err
	}
	v := recv
	for i, k := range path {
		if v == nil {
			return st.missing(path[:i+1], pos, lenient)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &notObjectError{name: strings.Join(path[:i], "."), pos: pos}
		}
		if v, ok = m[k]; !ok {
			return st.missing(path[:i+1], pos, lenient)
		}
	}
	return v, nil
}

func (st *execState) missing(path []string, pos int, lenient bool) (any, error) {
	if lenient || st.policy == MissingEmpty {
		return nil, nil
	}
	return nil, &missingError{name: strings.Join(path, "."), pos: pos}
}

func (st *execState) tick() (bool, error) { return false, st.step() }

// capWriter collects output up to the render's cap.
type capWriter struct {
	st *execState
	b  *strings.Builder
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.st.out += len(p)
	if w.st.out > w.st.maxOut {
		return 0, errOutput
	}
	if err := w.st.ctx.Err(); err != nil {
		return 0, errTimeout
	}
	return w.b.Write(p)
}

// execPlace picks "NAME:LINE:COL" out of a text/template execution error.
var execPlace = regexp.MustCompile(`^template: [a-z]+:(\d+):(\d+): executing "[a-z]+" at <(.*?)>: (?:error calling [a-zA-Z_]+: )?(.*)$`)

// explain turns an execution error into *Error with a position and a
// message that never quotes a data value.
func (st *execState) explain(part, src string, err error) error {
	e := &Error{Part: part, Message: "the template failed to render", kind: ErrRender}
	var miss *missingError
	var notObj *notObjectError
	switch {
	case errors.As(err, &miss):
		e.Line, e.Column = position(src, miss.pos)
		e.Variable, e.Message = miss.name, miss.Error()
		return e
	case errors.As(err, &notObj):
		e.Line, e.Column = position(src, notObj.pos)
		e.Variable, e.Message = notObj.name, notObj.Error()
		return e
	case errors.Is(err, errSteps), errors.Is(err, errTimeout), errors.Is(err, errOutput):
		e.kind = ErrLimit
		for _, l := range []error{errSteps, errTimeout, errOutput} {
			if errors.Is(err, l) {
				e.Message = l.Error()
			}
		}
		return e
	}
	var fe *funcError
	if errors.As(err, &fe) {
		e.Message = fe.msg
	}
	var xe template.ExecError
	if errors.As(err, &xe) {
		if m := execPlace.FindStringSubmatch(xe.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Column, _ = strconv.Atoi(m[2])
			if fe == nil && !strings.Contains(m[4], `"`) {
				// Built-in errors name types and indexes, never values;
				// quoted text might be one, so it is left out.
				e.Message = m[4]
			}
		}
	}
	return e
}

// normalize copies data, turning whole numbers into int64 so that 1e8
// prints as 100000000 rather than 1e+08.
func normalize(v any) map[string]any {
	m, _ := normalizeValue(v).(map[string]any)
	return m
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizeValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeValue(e)
		}
		return out
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	default:
		return v
	}
}

// funcError is a function's refusal, worded without the argument.
type funcError struct{ msg string }

func (e *funcError) Error() string { return e.msg }

func badArg(fn, msg string) error { return &funcError{msg: fmt.Sprintf("%s: %s", fn, msg)} }
