package templates

import (
	"fmt"
	"strconv"
	"text/template/parse"
)

// Names of the functions the rewriter inserts; the prefix cannot be
// typed by authors because the allow-list refuses it.
const (
	fnLookup = "__sp_lookup"
	fnTick   = "__sp_tick"
	fnPrint  = "__sp_print"
)

// rewriter walks a parsed part, refuses what the language does not allow
// and rewrites what it does, so that a template reaches nothing but the
// data map and cannot run unbounded:
//
//   - every field access (.a.b, $x.a, (pipe).a) becomes a call of the
//     look-up function, which reads only maps of the data, applies the
//     missing-variable policy and counts a step; a look-up that asks
//     whether a value is there (in the condition of if, with and range,
//     and as the value given to default) is lenient: missing is empty
//     under either policy;
//   - every loop body starts with a call of the tick function, which
//     counts a step and checks the deadline;
//   - every printing action ends with the print function, which prints
//     a missing value as nothing rather than "<no value>";
//   - functions outside the allow-list (call, among others) and
//     {{template}} are refused.
type rewriter struct {
	part, src string
}

func (rw rewriter) fail(pos parse.Pos, format string, args ...any) error {
	line, col := position(rw.src, int(pos))
	return &Error{Part: rw.part, Line: line, Column: col, Message: fmt.Sprintf(format, args...), kind: ErrSyntax}
}

func (rw rewriter) list(l *parse.ListNode) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := rw.node(n); err != nil {
			return err
		}
	}
	return nil
}

func (rw rewriter) node(n parse.Node) error {
	switch n := n.(type) {
	case *parse.TextNode, *parse.CommentNode, *parse.BreakNode, *parse.ContinueNode:
		return nil
	case *parse.ActionNode:
		if err := rw.pipe(n.Pipe, false); err != nil {
			return err
		}
		if len(n.Pipe.Decl) == 0 {
			n.Pipe.Cmds = append(n.Pipe.Cmds, command(n.Pos, ident(n.Pos, fnPrint)))
		}
		return nil
	case *parse.IfNode:
		return rw.branch(&n.BranchNode, false)
	case *parse.WithNode:
		return rw.branch(&n.BranchNode, false)
	case *parse.RangeNode:
		return rw.branch(&n.BranchNode, true)
	case *parse.TemplateNode:
		return rw.fail(n.Pos, "{{template}} is not allowed")
	default:
		return rw.fail(n.Position(), "this construct is not allowed")
	}
}

func (rw rewriter) branch(b *parse.BranchNode, loop bool) error {
	if err := rw.pipe(b.Pipe, true); err != nil {
		return err
	}
	if err := rw.list(b.List); err != nil {
		return err
	}
	if err := rw.list(b.ElseList); err != nil {
		return err
	}
	if loop && b.List != nil {
		// {{if __sp_tick}}{{end}}: the tick never answers true, so the
		// branch prints nothing in any escaping context.
		tick := &parse.IfNode{BranchNode: parse.BranchNode{NodeType: parse.NodeIf, Pos: b.Pos, Line: b.Line,
			Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: b.Pos, Line: b.Line, Cmds: []*parse.CommandNode{command(b.Pos, ident(b.Pos, fnTick))}},
			List: &parse.ListNode{NodeType: parse.NodeList, Pos: b.Pos}}}
		b.List.Nodes = append([]parse.Node{tick}, b.List.Nodes...)
	}
	return nil
}

// pipe rewrites a pipeline; lenient marks its look-ups so.
func (rw rewriter) pipe(p *parse.PipeNode, lenient bool) error {
	if p == nil {
		return nil
	}
	for ci, c := range p.Cmds {
		soft := lenient || isCall(c, "default") || ci+1 < len(p.Cmds) && isCall(p.Cmds[ci+1], "default")
		for i, arg := range c.Args {
			n, err := rw.arg(c.Pos, arg, soft)
			if err != nil {
				return err
			}
			c.Args[i] = n
		}
	}
	return nil
}

// arg checks and rewrites one argument of the command at pos (where
// look-up errors point).
func (rw rewriter) arg(pos parse.Pos, n parse.Node, lenient bool) (parse.Node, error) {
	switch n := n.(type) {
	case *parse.DotNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
		return n, nil
	case *parse.IdentifierNode:
		if !allowed[n.Ident] {
			return nil, rw.fail(n.Pos, "function %q is not allowed", n.Ident)
		}
		return n, nil
	case *parse.FieldNode:
		return lookup(pos, lenient, &parse.DotNode{Pos: n.Pos}, n.Ident), nil
	case *parse.VariableNode:
		if len(n.Ident) == 1 {
			return n, nil
		}
		v := &parse.VariableNode{NodeType: parse.NodeVariable, Pos: n.Pos, Ident: n.Ident[:1]}
		return lookup(pos, lenient, v, n.Ident[1:]), nil
	case *parse.ChainNode:
		inner, err := rw.arg(pos, n.Node, lenient)
		if err != nil {
			return nil, err
		}
		return lookup(pos, lenient, inner, n.Field), nil
	case *parse.PipeNode:
		return n, rw.pipe(n, lenient)
	default:
		return nil, rw.fail(n.Position(), "this construct is not allowed")
	}
}

// isCall reports whether c calls the function name.
func isCall(c *parse.CommandNode, name string) bool {
	id, ok := c.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == name
}

// lookup is (__sp_lookup RECV POS LENIENT "a" "b").
func lookup(pos parse.Pos, lenient bool, recv parse.Node, path []string) parse.Node {
	args := []parse.Node{ident(pos, fnLookup), recv,
		&parse.NumberNode{NodeType: parse.NodeNumber, Pos: pos, IsInt: true, Int64: int64(pos), Text: strconv.Itoa(int(pos))},
		&parse.BoolNode{NodeType: parse.NodeBool, Pos: pos, True: lenient}}
	for _, k := range path {
		args = append(args, &parse.StringNode{NodeType: parse.NodeString, Pos: pos, Quoted: strconv.Quote(k), Text: k})
	}
	return &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{command(pos, args...)}}
}

func command(pos parse.Pos, args ...parse.Node) *parse.CommandNode {
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: args}
}

func ident(pos parse.Pos, name string) *parse.IdentifierNode {
	return parse.NewIdentifier(name).SetPos(pos)
}
