package backend

import (
	"strconv"
	"strings"
	"text/template/parse"
	"time"
)

// A namePlan renders the name templates nearly every role uses (text, the
// three fields, and truncate, random and unix_time) without text/template.
// Executing a template walks its tree through reflection, and was a quarter
// of the plugin's CPU time in a dynamic creds read (make bench profile). A
// template the plan cannot express keeps rendering through the sdk's
// template; the parts below call the same functions the template would
// (truncateName, randomBase62), and TestNamePlanAgreesWithTheTemplate checks
// that both give the same name.
type namePlan []namePart

type namePart struct {
	kind namePartKind
	// text of partText; the field (nameData's) of partField.
	text string
	// n: partField's truncate length (0: none), partRandom's length.
	n int
}

type namePartKind uint8

const (
	partText namePartKind = iota
	partField
	partRandom
	partUnixTime
)

// compileNamePlan returns the plan of a parsed template that checkNameTemplate
// accepted, or nil when the template needs text/template.
func compileNamePlan(root *parse.ListNode) namePlan {
	if root == nil {
		return nil
	}
	var plan namePlan
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			plan = append(plan, namePart{kind: partText, text: string(n.Text)})
		case *parse.CommentNode:
		case *parse.ActionNode:
			p, ok := planAction(n.Pipe)
			if !ok {
				return nil
			}
			plan = append(plan, p)
		default:
			return nil
		}
	}
	return plan
}

// planAction handles {{.F}}, {{.F | truncate N}}, {{truncate N .F}},
// {{random N}} and {{unix_time}}.
func planAction(p *parse.PipeNode) (namePart, bool) {
	if p == nil || p.IsAssign || len(p.Decl) > 0 {
		return namePart{}, false
	}
	cmds := p.Cmds
	switch {
	case len(cmds) == 1 && len(cmds[0].Args) == 1:
		if f, ok := planField(cmds[0].Args[0]); ok {
			return namePart{kind: partField, text: f}, true
		}
		if isIdent(cmds[0].Args[0], "unix_time") {
			return namePart{kind: partUnixTime}, true
		}
	case len(cmds) == 1 && len(cmds[0].Args) == 2 && isIdent(cmds[0].Args[0], "random"):
		if n, ok := planInt(cmds[0].Args[1], maxRandomLength); ok {
			return namePart{kind: partRandom, n: n}, true
		}
	case len(cmds) == 1 && len(cmds[0].Args) == 3 && isIdent(cmds[0].Args[0], "truncate"):
		n, okN := planInt(cmds[0].Args[1], maxTruncateLength)
		f, okF := planField(cmds[0].Args[2])
		if okN && okF {
			return namePart{kind: partField, text: f, n: n}, true
		}
	case len(cmds) == 2 && len(cmds[0].Args) == 1 && len(cmds[1].Args) == 2 && isIdent(cmds[1].Args[0], "truncate"):
		f, okF := planField(cmds[0].Args[0])
		n, okN := planInt(cmds[1].Args[1], maxTruncateLength)
		if okN && okF {
			return namePart{kind: partField, text: f, n: n}, true
		}
	}
	return namePart{}, false
}

func planField(n parse.Node) (string, bool) {
	f, ok := n.(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	switch f.Ident[0] {
	case "RoleName", "DisplayName", "Marker":
		return f.Ident[0], true
	}
	return "", false
}

// planInt accepts an integer literal in 1..max; anything else is left to
// the template, which reports it.
func planInt(n parse.Node, max int) (int, bool) {
	num, ok := n.(*parse.NumberNode)
	if !ok || !num.IsInt || num.Int64 < 1 || num.Int64 > int64(max) {
		return 0, false
	}
	return int(num.Int64), true
}

func isIdent(n parse.Node, name string) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == name
}

func (p namePlan) render(d nameData) (string, error) {
	var sb strings.Builder
	for _, part := range p {
		switch part.kind {
		case partText:
			sb.WriteString(part.text)
		case partField:
			v := d.RoleName
			switch part.text {
			case "DisplayName":
				v = d.DisplayName
			case "Marker":
				v = d.Marker
			}
			if part.n > 0 {
				v = truncateName(part.n, v)
			}
			sb.WriteString(v)
		case partRandom:
			r, err := randomBase62(part.n)
			if err != nil {
				return "", err
			}
			sb.WriteString(r)
		case partUnixTime:
			// As the sdk's unix_time.
			sb.WriteString(strconv.FormatInt(time.Now().Unix(), 10))
		}
	}
	return sb.String(), nil
}
