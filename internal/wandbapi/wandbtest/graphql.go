package wandbtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// This file holds a small GraphQL reader and executor: enough of the
// language (operations, variables, aliases, arguments, fragments, inline
// fragments, directives ignored) to answer the queries W&B's clients send
// from resolvers written as Go functions. A field that no resolver knows
// is an error naming it, so a query shape the server does not answer is
// seen at once.

type selection struct {
	alias, name string
	args        map[string]any // values; variables are *varRef
	sub         []selection
	spread      string // fragment name, for ...Name
	on          string // type condition of an inline fragment
	inline      bool
}

type varRef struct{ name string }

type document struct {
	op        []selection
	fragments map[string]fragment
	defaults  map[string]any
}

type fragment struct {
	on  string
	sel []selection
}

type parser struct {
	toks []string
	i    int
	err  error
}

func tokenize(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ',' || unicode.IsSpace(rune(c)):
			i++
		case strings.HasPrefix(s[i:], "..."):
			out = append(out, "...")
			i += 3
		case strings.ContainsRune("{}()[]:!$=@|&", rune(c)):
			out = append(out, string(c))
			i++
		case strings.HasPrefix(s[i:], `"""`):
			j := strings.Index(s[i+3:], `"""`)
			if j < 0 {
				return nil, fmt.Errorf("unterminated block string")
			}
			out = append(out, strconv.Quote(s[i+3:i+3+j]))
			i += j + 6
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			out = append(out, s[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '-' || s[j] == '.' || s[j] == '+' ||
				unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected character %q", c)
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, nil
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.i++
	return t
}

func (p *parser) expect(t string) {
	if got := p.next(); got != t && p.err == nil {
		p.err = fmt.Errorf("expected %q, got %q", t, got)
	}
}

// parseDocument reads a query document; operation picks the operation by
// name when it holds several.
func parseDocument(q, operation string) (*document, error) {
	toks, err := tokenize(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	d := &document{fragments: map[string]fragment{}, defaults: map[string]any{}}
	found := false
	for p.peek() != "" && p.err == nil {
		switch t := p.peek(); t {
		case "fragment":
			p.next()
			name := p.next()
			p.expect("on")
			on := p.next()
			p.directives()
			d.fragments[name] = fragment{on: on, sel: p.selections()}
		case "query", "mutation", "subscription", "{":
			name := ""
			if t != "{" {
				p.next()
				if p.peek() != "(" && p.peek() != "{" && p.peek() != "@" {
					name = p.next()
				}
				if p.peek() == "(" {
					p.varDefs(d.defaults)
				}
				p.directives()
			}
			sel := p.selections()
			if !found || name == operation {
				d.op, found = sel, true
			}
		default:
			return nil, fmt.Errorf("unexpected %q at top level", t)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if !found {
		return nil, fmt.Errorf("no operation")
	}
	return d, nil
}

func (p *parser) varDefs(defaults map[string]any) {
	p.expect("(")
	for p.peek() != ")" && p.err == nil {
		p.expect("$")
		name := p.next()
		p.expect(":")
		p.typeRef()
		if p.peek() == "=" {
			p.next()
			defaults[name] = p.value()
		}
		p.directives()
	}
	p.expect(")")
}

func (p *parser) typeRef() {
	if p.peek() == "[" {
		p.next()
		p.typeRef()
		p.expect("]")
	} else {
		p.next()
	}
	if p.peek() == "!" {
		p.next()
	}
}

func (p *parser) directives() {
	for p.peek() == "@" {
		p.next()
		p.next()
		if p.peek() == "(" {
			p.arguments()
		}
	}
}

func (p *parser) selections() []selection {
	p.expect("{")
	var out []selection
	for p.peek() != "}" && p.err == nil {
		if p.peek() == "" {
			p.err = fmt.Errorf("unexpected end of query")
			return nil
		}
		if p.peek() == "..." {
			p.next()
			if p.peek() == "on" {
				p.next()
				on := p.next()
				p.directives()
				out = append(out, selection{inline: true, on: on, sub: p.selections()})
			} else if p.peek() == "{" || p.peek() == "@" {
				p.directives()
				out = append(out, selection{inline: true, sub: p.selections()})
			} else {
				out = append(out, selection{spread: p.next()})
				p.directives()
			}
			continue
		}
		s := selection{name: p.next()}
		if p.peek() == ":" {
			p.next()
			s.alias, s.name = s.name, p.next()
		}
		if s.alias == "" {
			s.alias = s.name
		}
		if p.peek() == "(" {
			s.args = p.arguments()
		}
		p.directives()
		if p.peek() == "{" {
			s.sub = p.selections()
		}
		out = append(out, s)
	}
	p.expect("}")
	return out
}

func (p *parser) arguments() map[string]any {
	p.expect("(")
	args := map[string]any{}
	for p.peek() != ")" && p.err == nil {
		name := p.next()
		p.expect(":")
		args[name] = p.value()
	}
	p.expect(")")
	return args
}

func (p *parser) value() any {
	t := p.next()
	switch {
	case t == "$":
		return &varRef{p.next()}
	case t == "[":
		var l []any
		for p.peek() != "]" && p.err == nil {
			l = append(l, p.value())
		}
		p.expect("]")
		return l
	case t == "{":
		m := map[string]any{}
		for p.peek() != "}" && p.err == nil {
			k := p.next()
			p.expect(":")
			m[k] = p.value()
		}
		p.expect("}")
		return m
	case strings.HasPrefix(t, `"`):
		s, err := strconv.Unquote(t)
		if err != nil {
			p.err = fmt.Errorf("bad string %s", t)
		}
		return s
	case t == "true", t == "false":
		return t == "true"
	case t == "null":
		return nil
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return float64(n)
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		return f
	}
	return t // enum value
}

// object is a GraphQL object: a type name and one resolver per field.
type object struct {
	typ    string
	fields map[string]func(args map[string]any) (any, error)
}

// execute resolves sel against obj. Values may be nil, scalars, strings,
// []string, *object, []*object or rawJSON.
func (d *document) execute(obj *object, sel []selection, vars map[string]any) (map[string]any, error) {
	out := map[string]any{}
	if err := d.into(out, obj, sel, vars); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *document) into(out map[string]any, obj *object, sel []selection, vars map[string]any) error {
	for _, s := range sel {
		switch {
		case s.spread != "":
			f, ok := d.fragments[s.spread]
			if !ok {
				return fmt.Errorf("unknown fragment %s", s.spread)
			}
			if typeMatches(obj.typ, f.on) {
				if err := d.into(out, obj, f.sel, vars); err != nil {
					return err
				}
			}
			continue
		case s.inline:
			if typeMatches(obj.typ, s.on) {
				if err := d.into(out, obj, s.sub, vars); err != nil {
					return err
				}
			}
			continue
		case s.name == "__typename":
			out[s.alias] = obj.typ
			continue
		}
		res, ok := obj.fields[s.name]
		if !ok {
			return fmt.Errorf("field %q is not known on type %s", s.name, obj.typ)
		}
		args := map[string]any{}
		for k, v := range s.args {
			args[k] = resolveVars(v, vars)
		}
		v, err := res(args)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", obj.typ, s.name, err)
		}
		switch x := v.(type) {
		case *object:
			if x == nil {
				out[s.alias] = nil
				continue
			}
			m, err := d.execute(x, s.sub, vars)
			if err != nil {
				return err
			}
			out[s.alias] = m
		case []*object:
			l := make([]any, 0, len(x))
			for _, o := range x {
				m, err := d.execute(o, s.sub, vars)
				if err != nil {
					return err
				}
				l = append(l, m)
			}
			out[s.alias] = l
		default:
			out[s.alias] = v
		}
	}
	return nil
}

// interfaces names the GraphQL interfaces an object type implements, where
// W&B's clients spread fragments on the interface.
var interfaces = map[string][]string{"ArtifactSequence": {"ArtifactCollection"}, "ArtifactPortfolio": {"ArtifactCollection"}}

// typeMatches reports whether a fragment on type condition on applies to
// an object of type typ.
func typeMatches(typ, on string) bool {
	if on == "" || on == typ {
		return true
	}
	for _, i := range interfaces[typ] {
		if i == on {
			return true
		}
	}
	return false
}

func resolveVars(v any, vars map[string]any) any {
	switch x := v.(type) {
	case *varRef:
		return vars[x.name]
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolveVars(e, vars)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = resolveVars(e, vars)
		}
		return out
	}
	return v
}
