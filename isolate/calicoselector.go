package isolate

import (
	"fmt"
	"strings"
)

// calicoSelector is a parsed Calico selector expression, evaluated against
// an endpoint's labels. It covers the subset policies commonly use:
// all(), has(k), !has(k), k == 'v', k != 'v', k in {'a','b'},
// k not in {...}, !, &&, || and parentheses. Anything else is a parse
// error, and the caller treats the policy as possibly selecting the pod.
type calicoSelector func(labels map[string]string) bool

func parseCalicoSelector(s string) (calicoSelector, error) {
	p := &selParser{src: s}
	if strings.TrimSpace(s) == "" {
		// An empty selector selects every endpoint, as all() does.
		return func(map[string]string) bool { return true }, nil
	}
	sel, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.skip(); p.pos != len(p.src) {
		return nil, fmt.Errorf("calico selector %q: unexpected %q", s, p.src[p.pos:])
	}
	return sel, nil
}

type selParser struct {
	src string
	pos int
}

func (p *selParser) skip() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\n", rune(p.src[p.pos])) {
		p.pos++
	}
}

// eat consumes tok when it comes next.
func (p *selParser) eat(tok string) bool {
	p.skip()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *selParser) errf(format string, a ...any) error {
	return fmt.Errorf("calico selector %q at %d: %s", p.src, p.pos, fmt.Sprintf(format, a...))
}

func (p *selParser) or() (calicoSelector, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.eat("||") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(m map[string]string) bool { return a(m) || r(m) }
	}
	return l, nil
}

func (p *selParser) and() (calicoSelector, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.eat("&&") {
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a := l
		l = func(m map[string]string) bool { return a(m) && r(m) }
	}
	return l, nil
}

func (p *selParser) unary() (calicoSelector, error) {
	switch {
	case p.eat("!") && !strings.HasPrefix(p.src[p.pos:], "="):
		inner, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { return !inner(m) }, nil
	case p.eat("("):
		inner, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, p.errf("want )")
		}
		return inner, nil
	case p.eat("all()"):
		return func(map[string]string) bool { return true }, nil
	case p.eat("has("):
		k := p.ident()
		if k == "" || !p.eat(")") {
			return nil, p.errf("want has(label)")
		}
		return func(m map[string]string) bool { _, ok := m[k]; return ok }, nil
	}
	k := p.ident()
	if k == "" {
		return nil, p.errf("want a label")
	}
	switch {
	case p.eat("=="):
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return ok && x == v }, nil
	case p.eat("!="):
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return !ok || x != v }, nil
	case p.eat("not in"):
		set, err := p.set()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return !ok || !set[x] }, nil
	case p.eat("in"):
		set, err := p.set()
		if err != nil {
			return nil, err
		}
		return func(m map[string]string) bool { x, ok := m[k]; return ok && set[x] }, nil
	}
	return nil, p.errf("unsupported operator")
}

// ident reads a label key: letters, digits and - _ . /
func (p *selParser) ident() string {
	p.skip()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if isAlnum(c) || strings.IndexByte("-_./", c) >= 0 {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *selParser) str() (string, error) {
	p.skip()
	if p.pos >= len(p.src) || (p.src[p.pos] != '\'' && p.src[p.pos] != '"') {
		return "", p.errf("want a quoted value")
	}
	q := p.src[p.pos]
	end := strings.IndexByte(p.src[p.pos+1:], q)
	if end < 0 {
		return "", p.errf("unterminated string")
	}
	v := p.src[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

func (p *selParser) set() (map[string]bool, error) {
	if !p.eat("{") {
		return nil, p.errf("want {")
	}
	set := map[string]bool{}
	if p.eat("}") {
		return set, nil
	}
	for {
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		set[v] = true
		if p.eat("}") {
			return set, nil
		}
		if !p.eat(",") {
			return nil, p.errf("want , or }")
		}
	}
}
