package spec

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/substitute"
)

// LoadOptions says where a spec is and what its environment is.
type LoadOptions struct {
	// Dir is the folder whose *.hcl files make up the spec; "" means ".".
	// Diagnostics name files as Dir joined with their base names, so a
	// relative Dir gives relative file names.
	Dir string
	// Vars are the values given with --var name=value; they override
	// STOREPACK_VAR_<name> and the variables' defaults.
	Vars map[string]string
	// Env looks up environment variables (STOREPACK_VAR_<name>,
	// SOURCE_DATE_EPOCH, NIX_STORE_DIR and those env() reads); nil means
	// os.LookupEnv.
	Env func(name string) (string, bool)
	// System is the host's system name, the default target of exports;
	// "" means HostSystem().
	System string
	// Parser parses the files; nil means a new one. Pass one to keep the
	// files for WriteDiagnostics (Parser.Files()).
	Parser *hclparse.Parser
}

// Schema of a spec file's top level.
var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "store"},
		{Type: "source", LabelNames: []string{"name"}},
		{Type: "export", LabelNames: []string{"name"}},
	},
}

// Load reads every *.hcl file of opts.Dir, in name order, and evaluates
// them into a Spec. The diagnostics hold every problem found; when they
// have errors the Spec is nil.
func Load(opts LoadOptions) (*Spec, hcl.Diagnostics) {
	l := newLoader(opts)
	sp := l.load()
	sortDiagnostics(l.diags)
	if l.diags.HasErrors() {
		return nil, l.diags
	}
	return sp, l.diags
}

// loader holds the state of one Load.
type loader struct {
	opts   LoadOptions
	env    func(string) (string, bool)
	parser *hclparse.Parser
	// dir is the spec folder as given (for file names), absDir absolute.
	dir, absDir string
	host        string
	diags       hcl.Diagnostics

	vars    map[string]*variable
	locals  map[string]*local
	sources map[string]*sourceNode
	store   *storeNode
	// stack is the chain of nodes being evaluated, to report cycles.
	stack []node
	// funcs is the function table, built once.
	funcs map[string]funcValue
	// cands are the store's items, listed once for reference scanning.
	cands []store.Path
	// badEpoch is set once a bad SOURCE_DATE_EPOCH is reported.
	badEpoch bool
	// exportBlocks are the export blocks, whose paths may give the store
	// folder (storeDirOfPaths).
	exportBlocks []*hcl.Block
}

func newLoader(opts LoadOptions) *loader {
	l := &loader{opts: opts, env: opts.Env, parser: opts.Parser, dir: opts.Dir, host: opts.System}
	if l.env == nil {
		l.env = os.LookupEnv
	}
	if l.parser == nil {
		l.parser = hclparse.NewParser()
	}
	if l.dir == "" {
		l.dir = "."
	}
	if l.host == "" {
		l.host, _ = HostSystem()
	}
	return l
}

func (l *loader) errorf(subject *hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: subject})
}

func (l *loader) warnf(subject *hcl.Range, summary, detail string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: subject})
}

// files parses the spec's files, sorted by name.
func (l *loader) files() ([]*hcl.File, []string) {
	abs, err := filepath.Abs(l.dir)
	if err != nil {
		l.errorf(nil, "Cannot read the spec folder", "%s: %v.", l.dir, err)
		return nil, nil
	}
	l.absDir = abs
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		l.errorf(nil, "Cannot read the spec folder", "%v.", err)
		return nil, nil
	}
	var files []*hcl.File
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".hcl") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		// A spec file is read bounded, and must be a regular file: a FIFO
		// or a link to a device would block or never end.
		name := filepath.Join(l.dir, e.Name())
		src, err := bounded.ReadFile(name, bounded.SpecFile)
		if err != nil {
			l.errorf(nil, "Cannot read a spec file", "%s.", printable.String(err.Error()))
			names = append(names, e.Name())
			continue
		}
		f, diags := l.parser.ParseHCL(src, name)
		l.diags = append(l.diags, diags...)
		names = append(names, e.Name())
		if f != nil {
			files = append(files, f)
		}
	}
	if len(names) == 0 {
		l.errorf(nil, "No spec files", "The folder %s has no *.hcl files.", l.dir)
	}
	return files, names
}

func (l *loader) load() *Spec {
	files, names := l.files()
	if len(files) == 0 || l.diags.HasErrors() {
		// Syntax errors: what follows from a partial parse would mislead.
		return nil
	}
	content, diags := hcl.MergeFiles(files).Content(fileSchema)
	l.diags = append(l.diags, diags...)

	var storeBlocks, exportBlocks []*hcl.Block
	l.vars = map[string]*variable{}
	l.locals = map[string]*local{}
	l.sources = map[string]*sourceNode{}
	for _, b := range content.Blocks {
		switch b.Type {
		case "variable":
			l.declareVariable(b)
		case "locals":
			l.declareLocals(b)
		case "store":
			storeBlocks = append(storeBlocks, b)
		case "source":
			l.declareSource(b)
		case "export":
			exportBlocks = append(exportBlocks, b)
		}
	}
	l.checkVarOptions()
	l.exportBlocks = exportBlocks
	l.declareStore(storeBlocks)

	// Evaluate everything that can be referred to, in an order that does
	// not matter: each node evaluates what it refers to first.
	for _, name := range sortedKeys(l.locals) {
		l.evalLocal(l.locals[name])
	}
	l.evalStore()
	for _, name := range sortedKeys(l.sources) {
		l.evalSource(l.sources[name])
	}

	sp := &Spec{Dir: l.absDir, Files: names, Store: l.store.value, FileSHA256: map[string]string{}, Variables: map[string]string{}}
	for _, name := range names {
		if f := l.parser.Files()[filepath.Join(l.dir, name)]; f != nil {
			sp.FileSHA256[name] = fmt.Sprintf("%x", sha256.Sum256(f.Bytes))
		}
	}
	for _, name := range sortedKeys(l.vars) {
		if v := l.vars[name]; v.value.IsWhollyKnown() && v.value != cty.NilVal {
			if b, err := ctyjson.Marshal(v.value, v.value.Type()); err == nil {
				sp.Variables[name] = string(b)
			}
		}
	}
	for _, name := range sortedKeys(l.sources) {
		if s := l.sources[name]; s.ok {
			sp.Sources = append(sp.Sources, s.value)
		}
	}
	sp.Exports = l.exports(exportBlocks)
	slices.SortFunc(sp.Exports, func(a, b Export) int { return strings.Compare(a.Name, b.Name) })
	return sp
}

// checkVarOptions reports --var values for undeclared variables.
func (l *loader) checkVarOptions() {
	for _, name := range sortedKeys(l.opts.Vars) {
		if _, ok := l.vars[name]; !ok {
			l.errorf(nil, "Value for undeclared variable", "A value was given for var.%s (--var %s=...), but the spec declares no variable %q.", name, name, name)
		}
	}
	for _, name := range sortedKeys(l.vars) {
		l.evalVariable(l.vars[name])
	}
}

// node is something an expression may refer to: a local, a source or
// the store block, evaluated on demand.
type node interface {
	// label names the node in messages, e.g. local.hello.
	label() string
	// state is 0 before evaluation, 1 during, 2 after.
	state() *int
	// defRange is where the node is defined.
	defRange() *hcl.Range
}

// enter starts evaluating n. It returns false when n is done or is being
// evaluated already; in the second case it reports the cycle.
func (l *loader) enter(n node) bool {
	switch *n.state() {
	case 2:
		return false
	case 1:
		i := slices.IndexFunc(l.stack, func(m node) bool { return m == n })
		var chain []string
		for _, m := range l.stack[i:] {
			chain = append(chain, m.label())
		}
		chain = append(chain, n.label())
		l.errorf(n.defRange(), "Cycle in references",
			"%s refers to itself: %s. Values may refer to each other in any order, but not in a circle.",
			n.label(), strings.Join(chain, " -> "))
		for _, m := range l.stack[i:] {
			markCycle(m)
		}
		return false
	}
	*n.state() = 1
	l.stack = append(l.stack, n)
	return true
}

// leave ends evaluating n.
func (l *loader) leave(n node) {
	*n.state() = 2
	l.stack = l.stack[:len(l.stack)-1]
}

// markCycle makes a node in a cycle evaluate to an unknown value, so that
// what uses it reports nothing more.
func markCycle(n node) {
	switch n := n.(type) {
	case *local:
		n.cycle = true
	case *sourceNode:
		n.cycle = true
	case *storeNode:
		n.cycle = true
	}
}

// resolve evaluates the locals and sources that expr refers to.
func (l *loader) resolve(expr hcl.Expression) {
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		var attr string
		if len(tr) > 1 {
			if a, ok := tr[1].(hcl.TraverseAttr); ok {
				attr = a.Name
			}
		}
		switch root {
		case "local":
			if attr == "" {
				for _, name := range sortedKeys(l.locals) {
					l.evalLocal(l.locals[name])
				}
			} else if lc, ok := l.locals[attr]; ok {
				l.evalLocal(lc)
			}
		case "source":
			if attr == "" {
				for _, name := range sortedKeys(l.sources) {
					l.evalSource(l.sources[name])
				}
			} else if s, ok := l.sources[attr]; ok {
				l.evalSource(s)
			}
		}
	}
}

// ctx is the evaluation context with every value known so far; those not
// evaluated yet (only those in a cycle) are unknown.
func (l *loader) ctx() *hcl.EvalContext {
	vars := map[string]cty.Value{}
	for name, v := range l.vars {
		vars[name] = v.value
	}
	locals := map[string]cty.Value{}
	for name, lc := range l.locals {
		locals[name] = cty.DynamicVal
		if lc.st == 2 && !lc.cycle {
			locals[name] = lc.value
		}
	}
	sources := map[string]cty.Value{}
	for name, s := range l.sources {
		sources[name] = cty.DynamicVal
		if s.st == 2 && s.ok {
			sources[name] = s.object()
		}
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":    cty.ObjectVal(vars),
			"local":  cty.ObjectVal(locals),
			"source": cty.ObjectVal(sources),
		},
		Functions: l.functions(),
	}
}

// eval evaluates expr, after what it refers to. ok is false when that
// failed (the diagnostics say why) or the value is unknown because of an
// earlier error.
func (l *loader) eval(expr hcl.Expression) (cty.Value, bool) {
	l.resolve(expr)
	v, diags := expr.Value(l.ctx())
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.DynamicVal, false
	}
	return v, v.IsWhollyKnown()
}

// storeNode is the store block, with its defaults.
type storeNode struct {
	block *hcl.Block
	attrs hcl.Attributes
	st    int
	cycle bool
	ok    bool
	value Store
}

func (s *storeNode) label() string { return "store" }
func (s *storeNode) state() *int   { return &s.st }
func (s *storeNode) defRange() *hcl.Range {
	if s.block == nil {
		return nil
	}
	return s.block.DefRange.Ptr()
}

var storeSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "dir"}, {Name: "db"}, {Name: "root"}, {Name: "substituters"}, {Name: "trusted_public_keys"}}}

func (l *loader) declareStore(blocks []*hcl.Block) {
	l.store = &storeNode{}
	for i, b := range blocks {
		if i > 0 {
			l.errorf(b.DefRange.Ptr(), "Duplicate store block", "A spec has at most one store block; the first is at %s.", pos(blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(storeSchema)
		l.diags = append(l.diags, diags...)
		l.store.block, l.store.attrs = b, content.Attributes
	}
}

// evalStore evaluates the store block, applying the defaults: dir from
// the exports' paths when they are all in one store folder, else
// NIX_STORE_DIR, else /gnu/store when it exists, else /nix/store; db
// "auto".
func (l *loader) evalStore() {
	s := l.store
	if !l.enter(s) {
		return
	}
	defer l.leave(s)
	s.ok = true
	if s.block != nil {
		s.value.Range = s.block.DefRange
	}
	dir := ""
	a := s.attrs["dir"]
	v, set, ok := l.evalString(a)
	switch {
	case !ok:
		s.ok = false
	case !set:
		dir = l.defaultStoreDir()
	case v == "":
		l.errorf(a.Expr.Range().Ptr(), "Invalid store folder", "store.dir must not be empty.")
		s.ok = false
	default:
		dir = l.absPath(v)
		if d, err := store.ParseDir(dir); err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Invalid store folder", "%v.", err)
			s.ok = false
		} else {
			dir = string(d)
		}
	}
	s.value.Dir = store.Dir(dir)
	s.value.DB = store.DBAuto
	a = s.attrs["db"]
	v, set, ok = l.evalString(a)
	switch {
	case !ok:
		s.ok = false
	case !set, v == store.DBAuto, v == store.DBNone:
		if set {
			s.value.DB = v
		}
	case v == "":
		l.errorf(a.Expr.Range().Ptr(), "Invalid store database", `store.db is "auto", "none" or the path of a database file, not "".`)
		s.ok = false
	default:
		s.value.DB = l.absPath(v)
	}
	a = s.attrs["root"]
	v, set, ok = l.evalString(a)
	switch {
	case !ok:
		s.ok = false
	case set && v == "":
		l.errorf(a.Expr.Range().Ptr(), "Invalid store root", "store.root, when set, is the folder a chroot store lives in, not \"\".")
		s.ok = false
	case set:
		s.value.Root = l.absPath(v)
	}
	l.substituters(s)
	if s.cycle {
		s.ok = false
	}
}

// substituters decodes the store block's binary caches and the keys that
// must sign what they serve.
func (l *loader) substituters(s *storeNode) {
	if a := s.attrs["substituters"]; a != nil {
		list, _, ok := l.stringList(a)
		if !ok {
			s.ok = false
		}
		for i, u := range list {
			if _, err := substitute.NewSource(u); err != nil {
				l.errorf(elemRange(a.Expr, i, len(list)), "Invalid substituter", "%v.", err)
				s.ok = false
				continue
			}
			s.value.Substituters = append(s.value.Substituters, u)
		}
	}
	if a := s.attrs["trusted_public_keys"]; a != nil {
		list, _, ok := l.stringList(a)
		if !ok {
			s.ok = false
		}
		for i, k := range list {
			if _, err := signing.ParsePublicKey(k); err != nil {
				l.errorf(elemRange(a.Expr, i, len(list)), "Invalid trusted public key", "%v: a key is name:base64, as nix-store --generate-binary-cache-key writes it.", err)
				s.ok = false
				continue
			}
			s.value.TrustedPublicKeys = append(s.value.TrustedPublicKeys, k)
		}
	}
	if len(s.value.Substituters) > 0 && len(s.value.TrustedPublicKeys) == 0 && s.attrs["trusted_public_keys"] == nil {
		l.errorf(s.attrs["substituters"].Expr.Range().Ptr(), "Substituters without trusted keys", "Every narinfo read from a substituter must be signed by one of trusted_public_keys: give the caches' public keys.")
		s.ok = false
	}
}

// defaultStoreDir is the store folder of the exports' paths when they
// all share one, else $NIX_STORE_DIR, else /gnu/store when it exists, else
// /nix/store.
func (l *loader) defaultStoreDir() string {
	if d := l.storeDirOfPaths(); d != "" {
		return d
	}
	if d, ok := l.env("NIX_STORE_DIR"); ok && d != "" {
		if _, err := store.ParseDir(d); err != nil {
			l.errorf(nil, "Invalid NIX_STORE_DIR", "%v.", err)
			return "/nix/store"
		}
		return d
	}
	if fi, err := os.Stat("/gnu/store"); err == nil && fi.IsDir() {
		return "/gnu/store"
	}
	return "/nix/store"
}

// absPath makes p absolute against the spec folder, and clean.
func (l *loader) absPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.absDir, p)
}

// evalString evaluates a to a string. set is false when a is nil or
// null; ok is false on errors (reported) or when the value is unknown
// because of earlier errors.
func (l *loader) evalString(a *hcl.Attribute) (v string, set, ok bool) {
	if a == nil {
		return "", false, true
	}
	cv, ok := l.evalAs(a, cty.String)
	if !ok || cv.IsNull() {
		return "", false, ok
	}
	return cv.AsString(), true, true
}

// evalAs evaluates a and converts its value to ty, reporting a type
// mismatch at the attribute. ok is false on errors and for values unknown
// because of earlier errors; a null value (meaning: unset) is ok.
func (l *loader) evalAs(a *hcl.Attribute, ty cty.Type) (cty.Value, bool) {
	v, ok := l.eval(a.Expr)
	if !ok {
		return v, false
	}
	cv, err := convertValue(v, ty)
	if err != nil {
		l.diags = append(l.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
			Context:  a.Range.Ptr(),
		})
		return cty.DynamicVal, false
	}
	return cv, true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pos writes where r starts as file:line:column.
func pos(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// sortDiagnostics orders diags as users read them: those about no place
// in the spec first, in the order found, then by file and position.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return -1
		case b.Subject == nil:
			return 1
		}
		if c := strings.Compare(a.Subject.Filename, b.Subject.Filename); c != 0 {
			return c
		}
		return a.Subject.Start.Byte - b.Subject.Start.Byte
	})
}

// storeDirOfPaths is the store folder of every store path that the paths
// of the export and system blocks list, when there is one and it is the
// same for all, else "". The paths are evaluated as far as they can be
// before the store folder is known: what refers to a source (whose store
// path needs the store folder) is unknown then, and left out; nothing is
// reported, as the paths are evaluated again, with diagnostics, later.
func (l *loader) storeDirOfPaths() string {
	ctx := l.probeContext()
	dirs := map[string]bool{}
	paths := func(body hcl.Body) hcl.Blocks {
		content, _, _ := body.PartialContent(&hcl.BodySchema{
			Attributes: []hcl.AttributeSchema{{Name: "paths"}},
			Blocks:     []hcl.BlockHeaderSchema{{Type: "system", LabelNames: []string{"name"}}},
		})
		a := content.Attributes["paths"]
		if a == nil {
			return content.Blocks
		}
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() || !v.IsKnown() || v.IsNull() || !v.CanIterateElements() {
			return content.Blocks
		}
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsKnown() && !ev.IsNull() && ev.Type() == cty.String {
				if d := storeDirOf(ev.AsString()); d != "" {
					dirs[d] = true
				}
			}
		}
		return content.Blocks
	}
	for _, b := range l.exportBlocks {
		for _, sb := range paths(b.Body) {
			paths(sb.Body)
		}
	}
	if len(dirs) != 1 {
		return ""
	}
	for d := range dirs {
		return d
	}
	return ""
}

// storeDirOf is the store folder of p when p is a store item or a path
// inside one (its first component of the form <hash>-<name> is an item
// of the folder above it), else "".
func storeDirOf(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) < 3 || parts[0] != "" {
		return ""
	}
	for i := 2; i < len(parts); i++ {
		if store.ValidBase(parts[i]) == nil {
			d, err := store.ParseDir(strings.Join(parts[:i], "/"))
			if err != nil {
				return ""
			}
			return string(d)
		}
	}
	return ""
}

// probeContext is the evaluation context of storeDirOfPaths: the
// variables, the locals evaluated as far as they can be without the
// store, and every source unknown. It evaluates nothing for good and
// reports nothing.
func (l *loader) probeContext() *hcl.EvalContext {
	vars := map[string]cty.Value{}
	for name, v := range l.vars {
		vars[name] = v.value
	}
	locals := map[string]cty.Value{}
	for name := range l.locals {
		locals[name] = cty.DynamicVal
	}
	sources := map[string]cty.Value{}
	for name := range l.sources {
		sources[name] = cty.DynamicVal
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":    cty.ObjectVal(vars),
			"local":  cty.ObjectVal(locals),
			"source": cty.ObjectVal(sources),
		},
		Functions: l.functions(),
	}
	// Locals may refer to each other: evaluate them again until none
	// becomes known (at most once per local).
	for range len(l.locals) {
		changed := false
		for _, name := range sortedKeys(l.locals) {
			if locals[name].IsWhollyKnown() {
				continue
			}
			v, diags := l.locals[name].attr.Expr.Value(ctx)
			if !diags.HasErrors() && v.IsWhollyKnown() {
				locals[name] = v
				changed = true
			}
		}
		if !changed {
			break
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
	}
	return ctx
}
