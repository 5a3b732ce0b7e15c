package spec

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// VarEnvPrefix starts the names of environment variables that set spec
// variables: STOREPACK_VAR_<name>.
const VarEnvPrefix = "STOREPACK_VAR_"

// variable is a variable block and its value.
type variable struct {
	name    string
	block   *hcl.Block
	ty      cty.Type
	def     *hcl.Attribute
	typed   bool // the block has a type attribute
	tyKnown bool
	value   cty.Value
}

var variableSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "type"}, {Name: "default"}, {Name: "description"},
}}

func (l *loader) declareVariable(b *hcl.Block) {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.errorf(b.LabelRanges[0].Ptr(), "Invalid variable name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)
		return
	}
	if prev, ok := l.vars[name]; ok {
		l.errorf(b.DefRange.Ptr(), "Duplicate variable", "The variable %q is already declared at %s.", name, pos(prev.block.DefRange))
		return
	}
	v := &variable{name: name, block: b, ty: cty.DynamicPseudoType, value: cty.DynamicVal}
	l.vars[name] = v
	content, diags := b.Body.Content(variableSchema)
	l.diags = append(l.diags, diags...)
	v.tyKnown = true
	if a := content.Attributes["type"]; a != nil {
		ty, diags := typeexpr.TypeConstraint(a.Expr)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			v.tyKnown = false
		} else {
			v.ty, v.typed = ty, true
		}
	}
	if a := content.Attributes["description"]; a != nil {
		// Descriptions are documentation: any constant string.
		dv, diags := a.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if !diags.HasErrors() {
			if _, err := convert.Convert(dv, cty.String); err != nil {
				l.errorf(a.Expr.Range().Ptr(), "Invalid description", "A variable's description is a string: %v.", err)
			}
		}
	}
	v.def = content.Attributes["default"]
}

// evalVariable sets v's value: --var, else STOREPACK_VAR_<name>, else the
// default.
func (l *loader) evalVariable(v *variable) {
	if !v.tyKnown {
		return
	}
	if raw, ok := l.opts.Vars[v.name]; ok {
		v.value = l.parseVarValue(v, raw, fmt.Sprintf("--var %s", v.name), fmt.Sprintf("<value for var.%s>", v.name))
		return
	}
	if raw, ok := l.env(VarEnvPrefix + v.name); ok {
		v.value = l.parseVarValue(v, raw, VarEnvPrefix+v.name, "<value for var."+v.name+" from "+VarEnvPrefix+v.name+">")
		return
	}
	if v.def == nil {
		l.errorf(v.block.DefRange.Ptr(), "No value for required variable",
			"The variable %q has no default: give it a value with --var %s=VALUE or %s%s=VALUE.", v.name, v.name, VarEnvPrefix, v.name)
		return
	}
	// Defaults are constants, though they may call functions.
	dv, diags := v.def.Expr.Value(&hcl.EvalContext{Functions: l.functions()})
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return
	}
	cv, err := convertValue(dv, v.ty)
	if err != nil {
		l.errorf(v.def.Expr.Range().Ptr(), "Invalid default value for variable", "The default of %q does not fit its type: %s.", v.name, err)
		return
	}
	v.value = cv
}

// parseVarValue turns a value given outside the spec into v's type:
// strings, numbers and bools (and variables without a type) are taken as
// written, other types (any included) are parsed as HCL expressions.
// from says where it came from; file is the pseudo file name of its text
// in diagnostics.
func (l *loader) parseVarValue(v *variable, raw, from, file string) cty.Value {
	if v.ty.IsPrimitiveType() || !v.typed {
		cv, err := convertValue(cty.StringVal(raw), v.ty)
		if err != nil {
			l.errorf(v.block.DefRange.Ptr(), "Invalid value for variable", "%s=%q does not fit the type of %q: %s.", from, raw, v.name, err)
			return cty.DynamicVal
		}
		return cv
	}
	src := []byte(raw)
	l.parser.AddFile(file, &hcl.File{Body: hcl.EmptyBody(), Bytes: src})
	expr, diags := hclsyntax.ParseExpression(src, file, hcl.InitialPos)
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	pv, diags := expr.Value(&hcl.EvalContext{Functions: l.functions()})
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	cv, err := convertValue(pv, v.ty)
	if err != nil {
		l.errorf(v.block.DefRange.Ptr(), "Invalid value for variable", "%s=%s does not fit the type of %q: %s.", from, raw, v.name, err)
		return cty.DynamicVal
	}
	return cv
}

// local is one attribute of a locals block.
type local struct {
	name  string
	attr  *hcl.Attribute
	st    int
	cycle bool
	value cty.Value
}

func (lc *local) label() string        { return "local." + lc.name }
func (lc *local) state() *int          { return &lc.st }
func (lc *local) defRange() *hcl.Range { return lc.attr.Range.Ptr() }

func (l *loader) declareLocals(b *hcl.Block) {
	attrs, diags := b.Body.JustAttributes()
	l.diags = append(l.diags, diags...)
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		if prev, ok := l.locals[name]; ok {
			l.errorf(a.NameRange.Ptr(), "Duplicate local value", "The local value %q is already defined at %s.", name, pos(prev.attr.NameRange))
			continue
		}
		l.locals[name] = &local{name: name, attr: a, value: cty.DynamicVal}
	}
}

// evalLocal evaluates lc, after the values it refers to.
func (l *loader) evalLocal(lc *local) {
	if !l.enter(lc) {
		return
	}
	defer l.leave(lc)
	v, ok := l.eval(lc.attr.Expr)
	if ok && !lc.cycle {
		lc.value = v
	} else {
		lc.value = cty.DynamicVal
	}
}

// convertValue converts v to ty, with an error message in HCL's words.
func convertValue(v cty.Value, ty cty.Type) (cty.Value, error) {
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cv, fmt.Errorf("%s", convertMessage(err))
	}
	return cv, nil
}

// convertMessage is err's text, with cty's path prefix when it has one.
func convertMessage(err error) string {
	if pe, ok := err.(cty.PathError); ok && len(pe.Path) > 0 {
		return fmt.Sprintf("%s: %s", formatPath(pe.Path), pe.Error())
	}
	return err.Error()
}

// formatPath writes a cty path as HCL index syntax, e.g. [1] or ["k"].
func formatPath(p cty.Path) string {
	s := ""
	for _, step := range p {
		switch st := step.(type) {
		case cty.IndexStep:
			switch st.Key.Type() {
			case cty.Number:
				s += "[" + st.Key.AsBigFloat().Text('f', -1) + "]"
			case cty.String:
				s += fmt.Sprintf("[%q]", st.Key.AsString())
			default:
				s += "[...]"
			}
		case cty.GetAttrStep:
			s += "." + st.Name
		}
	}
	return s
}
