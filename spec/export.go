package spec

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/storepack/storepack/export/sbom"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/reference"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// Defaults and limits of exports.
const (
	// DefaultMaxLayers is max_layers when unset.
	DefaultMaxLayers = 100
	// MaxLayersLimit is the largest max_layers: engines accept about 127.
	MaxLayersLimit = 127
	// DefaultCreated is the creation time of images and trees when
	// neither created nor SOURCE_DATE_EPOCH is set.
	DefaultCreated = plan.DefaultCreated
)

// formatAttrs are the export attributes that only some formats take: a
// format takes those its Def lists (format.Def.TakesAttr).
var formatAttrs = slices.Concat(format.ImageAttrs, format.RunAttrs, format.TreeAttrs, format.DatabaseAttrs, format.RelocatableAttrs, []string{"compression"})

var exportSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "format", Required: true},
		{Name: "paths"}, {Name: "systems"}, {Name: "output"},
		{Name: "tag"}, {Name: "entrypoint"}, {Name: "cmd"}, {Name: "env"},
		{Name: "working_dir"}, {Name: "user"}, {Name: "labels"},
		{Name: "exposed_ports"}, {Name: "volumes"}, {Name: "symlinks"},
		{Name: "max_layers"}, {Name: "compression"}, {Name: "created"},
		{Name: "push"}, {Name: "mount_from"}, {Name: "insecure"}, {Name: "sign_key"}, {Name: "database"},
		{Name: "sbom"}, {Name: "provenance"}, {Name: "annotations"}, {Name: "base"},
		{Name: "profile"}, {Name: "relocatable"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "system", LabelNames: []string{"name"}},
		{Type: "package"},
		{Type: "account", LabelNames: []string{"name"}},
		{Type: "file", LabelNames: []string{"path"}},
		{Type: "layer", LabelNames: []string{"name"}},
		{Type: "profile"},
		{Type: "appimage"},
	},
}

var profileSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "allow_collisions"}}}

var packageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "name"}, {Name: "version", Required: true}, {Name: "release"},
	{Name: "maintainer"}, {Name: "description"}, {Name: "license"}, {Name: "homepage"},
	{Name: "section"}, {Name: "priority"},
	{Name: "preinst"}, {Name: "postinst"}, {Name: "prerm"}, {Name: "postrm"},
}}

var systemSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "paths"}, {Name: "entrypoint"}, {Name: "cmd"},
}}

var (
	stringList = cty.List(cty.String)
	stringMap  = cty.Map(cty.String)
	portRe     = regexp.MustCompile(`^([0-9]{1,5})(?:/(tcp|udp|sctp))?$`)
)

// exportDecl is an export block being decoded.
type exportDecl struct {
	block *hcl.Block
	attrs hcl.Attributes
	e     Export
	// outputRange is where the output is set, or the block.
	outputRange hcl.Range
	// remote is set when the output names a place outside the output
	// folder (format.Def.RemoteOutput).
	remote bool
}

// exports decodes the export blocks, in the order given, and checks what
// they have in common: names and outputs.
func (l *loader) exports(blocks []*hcl.Block) []Export {
	var decls []*exportDecl
	byName := map[string]*exportDecl{}
	for _, b := range blocks {
		name := b.Labels[0]
		if !exportName.MatchString(name) {
			l.errorf(b.LabelRanges[0].Ptr(), "Invalid export name", "%q is not a valid export name: use letters, digits, '.', '_' and '-', starting with a letter or digit.", name)
			continue
		}
		if prev, ok := byName[name]; ok {
			l.errorf(b.LabelRanges[0].Ptr(), "Duplicate export", "The export %q is already defined at %s.", name, pos(prev.block.DefRange))
			continue
		}
		d := l.export(b)
		byName[name] = d
		decls = append(decls, d)
	}
	for i, d := range decls {
		if d.e.Output == "" {
			continue
		}
		for _, prev := range decls[:i] {
			if prev.e.Output == "" {
				continue
			}
			if o, p := d.e.Output, prev.e.Output; o == p || strings.HasPrefix(o, p+"/") || strings.HasPrefix(p, o+"/") {
				l.errorf(d.outputRange.Ptr(), "Duplicate output", "The export %q writes %s, and the export %q (at %s) writes %s: give each export its own output.", d.e.Name, o, prev.e.Name, pos(prev.block.DefRange), p)
				break
			}
		}
	}
	out := make([]Export, 0, len(decls))
	for _, d := range decls {
		out = append(out, d.e)
	}
	return out
}

// export decodes one export block, reporting every problem.
func (l *loader) export(b *hcl.Block) *exportDecl {
	content, diags := b.Body.Content(exportSchema)
	l.diags = append(l.diags, diags...)
	d := &exportDecl{block: b, attrs: content.Attributes, outputRange: b.DefRange}
	e := &d.e
	e.Name = b.Labels[0]
	e.Range = b.DefRange
	e.Attrs = map[string]hcl.Range{}
	for name, a := range content.Attributes {
		e.Attrs[name] = a.Range
	}
	attrs := content.Attributes

	if s, set, ok := l.evalString(attrs["format"]); ok && set {
		if f, known := format.Parse(s); known {
			e.Format = f
		} else {
			l.errorf(attrs["format"].Expr.Range().Ptr(), "Unknown format", "The format %q is not one of %s.", s, quoteList(format.All()))
		}
	} else if ok && attrs["format"] != nil {
		l.errorf(attrs["format"].Expr.Range().Ptr(), "Missing format", "An export needs a format: one of %s.", quoteList(format.All()))
	}
	def := e.Format.Def()
	image := def.Kind == format.Image
	if e.Format != "" {
		for _, name := range formatAttrs {
			if a := attrs[name]; a != nil && !def.TakesAttr(name) {
				l.notForFormat(a, e)
			}
		}
	}

	paths, pset, pok := l.storePaths(attrs["paths"])
	if runs(def) {
		e.Entrypoint, _ = l.entrypoint(attrs["entrypoint"])
		e.Cmd, _, _ = l.stringList(attrs["cmd"])
		e.Env = l.stringMap(attrs["env"], "Invalid environment variable", func(k, _ string) string {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return "an environment variable's name must be non-empty, without '='"
			}
			return ""
		})
	}
	l.systems(d, content.Blocks.OfType("system"), sysDefaults{paths, pset || !pok, e.Entrypoint, e.Cmd})
	if slices.Contains(def.Requires, "entrypoint") {
		for _, s := range e.Systems {
			if len(s.Entrypoint) == 0 {
				l.errorf(d.block.DefRange.Ptr(), "Missing entrypoint", "The export %q has format %q, whose output runs one program: give it an entrypoint (system %s has none).", e.Name, e.Format, s.Name)
				break
			}
		}
	}
	if def.Compressions != nil && !image {
		e.Compression = l.compression(d)
	}
	l.output(d)
	l.signKey(d, def)
	l.supplyChain(d)
	if def.Kind == format.Image || def.Kind == format.Tree {
		l.symlinks(d)
		l.created(d)
	}
	if a := attrs["database"]; a != nil && def.TakesAttr("database") {
		if v, ok := l.evalAs(a, cty.Bool); ok && !v.IsNull() {
			e.Database = v.True()
		}
	}
	l.profile(d, attrs["profile"], content.Blocks.OfType("profile"))
	if slices.Contains(def.Requires, "profile") && e.Profile == nil {
		l.errorf(d.block.DefRange.Ptr(), "Missing profile", "The export %q has format %q, which packs a profile: add profile = true.", e.Name, e.Format)
	}
	if a := attrs["relocatable"]; a != nil && def.TakesAttr("relocatable") {
		if v, ok := l.evalAs(a, cty.Bool); ok && !v.IsNull() {
			e.Relocatable = v.True()
			if e.Relocatable && e.Profile == nil {
				l.errorf(a.Expr.Range().Ptr(), "Relocatable without a profile", "A relocatable pack wraps the programs of its profile: add profile = true to the export %q.", e.Name)
			}
		}
	}
	if slices.Contains(def.Requires, "relocatable") && !e.Relocatable {
		l.errorf(d.block.DefRange.Ptr(), "Missing relocatable", "The export %q has format %q, which runs from wherever it is mounted: add relocatable = true.", e.Name, e.Format)
	}
	l.packageBlock(d, content.Blocks.OfType("package"))
	l.appImageBlock(d, content.Blocks.OfType("appimage"))
	l.accounts(d, content.Blocks.OfType("account"))
	l.fileBlocks(d, content.Blocks.OfType("file"))
	if !image {
		l.layerBlocks(d, content.Blocks.OfType("layer"))
		return d
	}
	l.image(d)
	l.layerBlocks(d, content.Blocks.OfType("layer"))
	if push, set, ok := l.evalString(attrs["push"]); ok && set {
		e.Push = push
		if _, _, err := reference.Parse(push); err != nil {
			l.errorf(attrs["push"].Expr.Range().Ptr(), "Invalid push reference", "push is a registry reference such as registry.example.org/hello:1.0: %v.", err)
		}
	}
	if a := attrs["mount_from"]; a != nil {
		if repos, set, ok := l.stringList(a); ok && set {
			e.MountFrom = repos
			for _, r := range repos {
				if _, _, err := reference.Parse(r); err != nil || strings.ContainsAny(r, ":@") {
					l.errorf(a.Expr.Range().Ptr(), "Invalid mount_from repository", "mount_from lists repositories of the push registry, such as team/base, without a tag or digest: %q.", r)
				}
			}
			if attrs["push"] == nil {
				l.warnf(a.NameRange.Ptr(), "mount_from without push", "mount_from only affects pushing, and the export %q has no push.", e.Name)
			}
		}
	}
	if a := attrs["insecure"]; a != nil {
		if v, ok := l.evalAs(a, cty.Bool); ok && !v.IsNull() {
			e.Insecure = v.True()
			if e.Insecure && attrs["push"] == nil && attrs["base"] == nil {
				l.warnf(a.NameRange.Ptr(), "insecure without push", "insecure only affects pushing and a registry base, and the export %q has neither.", e.Name)
			}
		}
	}
	l.baseRef(d)
	l.checkUser(d)
	return d
}

// sysDefaults are the export's settings that its system blocks may
// override. pathsGiven is true when paths is set, even with errors.
type sysDefaults struct {
	paths      []store.Path
	pathsGiven bool
	entrypoint []string
	cmd        []string
}

// systems decodes the systems attribute and the system blocks into
// e.Systems: those listed in systems, in that order, then those that only
// have a block; the host's when there are neither.
func (l *loader) systems(d *exportDecl, blocks hcl.Blocks, def sysDefaults) {
	e := &d.e
	var names []string
	listed := false
	if a := d.attrs["systems"]; a != nil {
		if v, ok := l.evalAs(a, stringList); ok && !v.IsNull() {
			listed = true
			for i, sv := range v.AsValueSlice() {
				s := sv.AsString()
				switch {
				case !KnownSystem(s):
					l.errorf(elemRange(a.Expr, i, v.LengthInt()), "Unknown system", "%q is not a known system; known ones: %s.", s, strings.Join(Systems(), ", "))
				case slices.Contains(names, s):
					l.errorf(elemRange(a.Expr, i, v.LengthInt()), "Duplicate system", "%q is listed twice.", s)
				default:
					names = append(names, s)
				}
			}
			if v.LengthInt() == 0 {
				l.errorf(a.Expr.Range().Ptr(), "No systems", "systems must list at least one system (or be left out for the host's).")
			}
		}
	}
	type sysBlock struct {
		b     *hcl.Block
		attrs hcl.Attributes
	}
	byName := map[string]sysBlock{}
	for _, b := range blocks {
		content, diags := b.Body.Content(systemSchema)
		l.diags = append(l.diags, diags...)
		name := b.Labels[0]
		switch {
		case !KnownSystem(name):
			l.errorf(b.LabelRanges[0].Ptr(), "Unknown system", "%q is not a known system; known ones: %s.", name, strings.Join(Systems(), ", "))
			continue
		case byName[name].b != nil:
			l.errorf(b.DefRange.Ptr(), "Duplicate system block", "The export %q already has a block for %s at %s.", e.Name, name, pos(byName[name].b.DefRange))
			continue
		}
		byName[name] = sysBlock{b, content.Attributes}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		if e.Format != "" && !runs(e.Format.Def()) {
			for _, an := range []string{"entrypoint", "cmd"} {
				if a := content.Attributes[an]; a != nil {
					l.notForFormat(a, e)
				}
			}
		}
	}
	if len(names) == 0 && !listed {
		if !KnownSystem(l.host) {
			l.errorf(d.block.DefRange.Ptr(), "Unknown host system", "The host's system %s is not one storepack knows; set systems.", l.host)
			return
		}
		names = []string{l.host}
	}
	for _, name := range names {
		sys := System{Name: name, Paths: def.paths, Entrypoint: def.entrypoint, Cmd: def.cmd}
		given := def.pathsGiven
		sb := byName[name]
		if sb.b != nil {
			if ps, set, ok := l.storePaths(sb.attrs["paths"]); set || !ok {
				sys.Paths, given = ps, true
			}
			if runs(e.Format.Def()) {
				if ep, set := l.entrypoint(sb.attrs["entrypoint"]); set {
					sys.Entrypoint = ep
				}
				if c, set, _ := l.stringList(sb.attrs["cmd"]); set {
					sys.Cmd = c
				}
			}
		}
		if len(sys.Paths) == 0 && !given {
			subject := d.block.DefRange.Ptr()
			if sb.b != nil {
				subject = sb.b.DefRange.Ptr()
			}
			l.errorf(subject, "No paths", "The export %q has no store paths for %s: set paths in the export or in its system block.", e.Name, name)
		}
		e.Systems = append(e.Systems, sys)
	}
}

// output sets the export's output, by default from its name and format,
// and checks that it stays inside the output folder.
func (l *loader) output(d *exportDecl) {
	e := &d.e
	a := d.attrs["output"]
	o, set, ok := l.evalString(a)
	if !ok {
		return
	}
	if !set {
		if e.Format != "" {
			e.Output = e.Format.Output(e.Name, e.Compression)
			e.OutputDefault = true
		}
		return
	}
	d.outputRange = a.Expr.Range()
	if def := e.Format.Def(); def.RemoteOutput == nil && strings.Contains(o, "://") {
		fs := format.Where(func(d format.Def) bool { return d.RemoteOutput != nil })
		l.errorf(a.Expr.Range().Ptr(), "Invalid output", "The output of a %q export is a path inside the output folder, not a URL: only %s exports write elsewhere.", e.Format, format.Join(fs))
		return
	} else if def.RemoteOutput != nil {
		remote, err := def.RemoteOutput(o)
		if err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Invalid output", "%s.", upperFirst(err.Error()))
			return
		}
		if remote {
			d.remote = true
			e.Output = o
			return
		}
	}
	if !filepath.IsLocal(o) || strings.Contains(o, "\\") {
		l.errorf(a.Expr.Range().Ptr(), "Invalid output", "%q is not a relative path inside the output folder: it must not be empty or absolute, nor go up with \"..\".", o)
		return
	}
	e.Output = path.Clean(o)
}

// runs reports whether a format says how its program runs (entrypoint,
// cmd, env, also in system blocks).
func runs(d format.Def) bool { return d.TakesAttr("entrypoint") }

// notForFormat reports an attribute set on an export whose format does
// not take it, naming the formats that do.
func (l *loader) notForFormat(a *hcl.Attribute, e *Export) {
	fs := format.TakingAttr(a.Name)
	l.errorf(a.NameRange.Ptr(), "Attribute only for "+formatsLabel(fs), "%s applies to %s exports; the export %q has format %q.", a.Name, format.Join(fs), e.Name, e.Format)
}

// formatsLabel names a set of formats in a summary: "images" for the
// images, then "file system trees" for the trees or the other formats'
// names ("images, squashfs and appimage"); else the formats' names.
func formatsLabel(fs []format.Format) string {
	images := format.OfKind(format.Image)
	var rest []format.Format
	for _, f := range fs {
		if !slices.Contains(images, f) {
			rest = append(rest, f)
		}
	}
	switch {
	case len(fs)-len(rest) != len(images):
		return format.Join(fs)
	case len(rest) == 0:
		return "images"
	case slices.Equal(rest, format.OfKind(format.Tree)):
		return "images and file system trees"
	}
	return format.Join(append([]format.Format{"images"}, rest...))
}

// compression decodes the compression attribute of an export whose format
// takes one: one of the format's compressions, by default its first.
func (l *loader) compression(d *exportDecl) format.Compression {
	def := d.e.Format.Def()
	a := d.attrs["compression"]
	c, set, ok := l.evalString(a)
	if !ok || !set {
		return def.Compressions[0]
	}
	if !d.e.Format.Takes(format.Compression(c)) {
		of := ""
		if def.CompressionOf != "" {
			of = " of " + def.CompressionOf
		}
		l.errorf(a.Expr.Range().Ptr(), "Unknown compression", "The compression %q%s is not one of %s.", c, of, quoteList(def.Compressions))
		return def.Compressions[0]
	}
	return format.Compression(c)
}

// signKey decodes the signing key, which is read and checked here so that
// a missing or bad key is reported at its attribute: a Nix key for formats
// that sign narinfos, a PEM key for the others.
func (l *loader) signKey(d *exportDecl, def format.Def) {
	e, attrs := &d.e, d.attrs
	a := attrs["sign_key"]
	p, set, ok := l.evalString(a)
	if !ok || !set {
		return
	}
	if p == "" {
		l.errorf(a.Expr.Range().Ptr(), "Invalid sign_key", "sign_key is the path of a secret key file, not an empty string; leave it out for unsigned outputs.")
		return
	}
	e.SignKey = l.absPath(p)
	if def.SignKey == format.NixKey {
		if _, err := signing.ReadSecretKey(e.SignKey); err != nil {
			l.errorf(a.Expr.Range().Ptr(), "Invalid sign_key", "%s. Make a key pair with `storepack keygen NAME` or `nix-store --generate-binary-cache-key NAME SECRET PUBLIC`.", upperFirst(err.Error()))
		}
		return
	}
	if _, err := signing.ReadPEMKey(e.SignKey, l.env); err != nil {
		l.errorf(a.Expr.Range().Ptr(), "Invalid sign_key", "%s. Exports of format %q are signed with a PEM key: ed25519 or ECDSA P-256 in PKCS#8 (`storepack keygen --pem NAME`), or a cosign key with its password in %s.", upperFirst(err.Error()), e.Format, signing.PasswordEnv)
	}
}

// supplyChain decodes sbom and provenance, which every format takes.
func (l *loader) supplyChain(d *exportDecl) {
	e, attrs := &d.e, d.attrs
	if a := attrs["sbom"]; a != nil {
		list, set, ok := l.stringList(a)
		if ok && set {
			seen := map[string]bool{}
			for _, f := range list {
				switch {
				case !slices.Contains(sbom.Formats, sbom.Format(f)):
					l.errorf(a.Expr.Range().Ptr(), "Invalid sbom", "%q is not an SBOM format: sbom takes %s.", f, sbomFormats())
				case seen[f]:
					l.errorf(a.Expr.Range().Ptr(), "Invalid sbom", "%q is listed twice.", f)
				default:
					seen[f] = true
					e.SBOM = append(e.SBOM, f)
				}
			}
		}
	}
	if a := attrs["provenance"]; a != nil {
		if v, ok := l.evalAs(a, cty.Bool); ok && !v.IsNull() {
			e.Provenance = v.True()
		}
	}
	if d.remote {
		for _, name := range []string{"sbom", "provenance"} {
			if a := attrs[name]; a != nil {
				l.errorf(a.NameRange.Ptr(), "Not for a remote output", "%s writes files beside the output, and the export %q writes outside the output folder: leave %s out.", name, e.Name, name)
			}
		}
	}
}

// sbomFormats lists the SBOM formats for messages: "\"spdx\" (SPDX 2.3
// JSON) and \"cyclonedx\" (CycloneDX JSON)".
func sbomFormats() string {
	var b strings.Builder
	for i, f := range sbom.Formats {
		switch {
		case i == len(sbom.Formats)-1 && i > 0:
			b.WriteString(" and ")
		case i > 0:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q (%s)", f, f.Title())
	}
	return b.String()
}

// image decodes the settings of a docker or oci export.
func (l *loader) image(d *exportDecl) {
	e, attrs, im := &d.e, d.attrs, &d.e.Image
	if tag, set, ok := l.evalString(attrs["tag"]); ok && set {
		im.Tag = tag
		if _, _, err := reference.Parse(tag); err != nil {
			l.errorf(attrs["tag"].Expr.Range().Ptr(), "Invalid tag", "A tag is name[:tag] as docker and OCI tools take it: %v.", err)
		}
	} else if _, _, err := reference.Parse(e.Name); ok && err != nil {
		l.errorf(d.block.LabelRanges[0].Ptr(), "Invalid default tag", "Without a tag, the image's name is the export's name, and %q is not a valid image name (lower-case letters and digits separated by '.', '_' or '-'): set tag.", e.Name)
	}
	im.Annotations = l.stringMap(attrs["annotations"], "Invalid annotation", func(k, _ string) string {
		if k == "" {
			return "an annotation's key must be non-empty"
		}
		return ""
	})
	im.Labels = l.stringMap(attrs["labels"], "Invalid label", func(k, _ string) string {
		if k == "" {
			return "a label's name must not be empty"
		}
		return ""
	})
	if wd, set, ok := l.evalString(attrs["working_dir"]); ok && set {
		im.WorkingDir = wd
		if wd != "" && !path.IsAbs(wd) {
			l.errorf(attrs["working_dir"].Expr.Range().Ptr(), "Invalid working_dir", "working_dir %q is not an absolute path.", wd)
		}
	}
	im.User, _, _ = l.evalString(attrs["user"])
	if a := attrs["exposed_ports"]; a != nil {
		ports, _, _ := l.stringList(a)
		for i, p := range ports {
			m := portRe.FindStringSubmatch(p)
			n := 0
			if m != nil {
				n, _ = strconv.Atoi(m[1])
			}
			if m == nil || n < 1 || n > 65535 {
				l.errorf(elemRange(a.Expr, i, len(ports)), "Invalid exposed port", "%q is not PORT/PROTOCOL: a port from 1 to 65535, then /tcp, /udp or /sctp (tcp when left out).", p)
				continue
			}
			proto := m[2]
			if proto == "" {
				proto = "tcp"
			}
			im.ExposedPorts = append(im.ExposedPorts, fmt.Sprintf("%d/%s", n, proto))
		}
	}
	if a := attrs["volumes"]; a != nil {
		vols, _, _ := l.stringList(a)
		for i, v := range vols {
			if !path.IsAbs(v) {
				l.errorf(elemRange(a.Expr, i, len(vols)), "Invalid volume", "The volume %q is not an absolute path.", v)
			}
		}
		im.Volumes = vols
	}
	im.MaxLayers = DefaultMaxLayers
	if a := attrs["max_layers"]; a != nil {
		if v, ok := l.evalAs(a, cty.Number); ok && !v.IsNull() {
			bf := v.AsBigFloat()
			n, acc := bf.Int64()
			if !bf.IsInt() || acc != big.Exact || n < 1 || n > MaxLayersLimit {
				l.errorf(a.Expr.Range().Ptr(), "max_layers out of range", "max_layers is a whole number from 1 to %d, not %s.", MaxLayersLimit, bf.Text('g', -1))
			} else {
				im.MaxLayers = int(n)
			}
		}
	}
	im.Compression = l.compression(d)
}

// symlinks decodes the symlinks of an image or tree.
func (l *loader) symlinks(d *exportDecl) {
	e, a := &d.e, d.attrs["symlinks"]
	e.Symlinks = l.stringMap(a, "Invalid symlink", func(k, v string) string {
		if !IsTreePath(k) {
			return fmt.Sprintf("the link %q is not a clean absolute path below /", k)
		}
		if v == "" {
			return fmt.Sprintf("the link %q has an empty target", k)
		}
		return l.checkInside(v)
	})
	if a != nil && e.Symlinks == nil {
		e.Symlinks = map[string]string{}
	}
}

// created decodes the creation time of an image or tree: created, else
// SOURCE_DATE_EPOCH's time, else DefaultCreated.
func (l *loader) created(d *exportDecl) {
	e, a := &d.e, d.attrs["created"]
	c, set, ok := l.evalString(a)
	switch {
	case !ok:
		return
	case !set:
		e.Created = l.defaultCreated()
		return
	}
	_, err := parseCreated(c)
	switch {
	case errors.Is(err, errBefore1970):
		l.errorf(a.Expr.Range().Ptr(), "Invalid created time", "%q is before 1970.", c)
	case err != nil:
		l.errorf(a.Expr.Range().Ptr(), "Invalid created time", "%q is not an RFC 3339 time such as %s.", c, DefaultCreated)
	default:
		e.Created = c
	}
}

// packageBlock decodes the package block, which deb and rpm exports need
// and the others must not have.
func (l *loader) packageBlock(d *exportDecl, blocks hcl.Blocks) {
	e := &d.e
	if e.Format == "" {
		return
	}
	block, takes := e.Format.Def().Block("package")
	for i, b := range blocks {
		switch {
		case !takes:
			fs := format.Join(format.TakingBlock("package"))
			l.errorf(b.DefRange.Ptr(), "Block only for "+fs,
				"A package block gives the metadata of %s packages; the export %q has format %q.", fs, e.Name, e.Format)
			continue
		case i > 0:
			l.errorf(b.DefRange.Ptr(), "Duplicate package block", "The export %q already has a package block at %s.", e.Name, pos(blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(packageSchema)
		l.diags = append(l.diags, diags...)
		p := &Package{Name: e.Name, Release: "1"}
		fields := []struct {
			name string
			to   *string
			re   *regexp.Regexp
			want string
		}{
			{"name", &p.Name, packageName, "lower-case letters, digits and '+', '-', '.', starting with a letter or digit"},
			{"version", &p.Version, packageVersion, "letters, digits and '.', '+', '~', '_', starting with a digit"},
			{"release", &p.Release, packageVersion, "letters, digits and '.', '+', '~', '_', starting with a digit"},
			{"maintainer", &p.Maintainer, oneLine, "one line of text"},
			{"description", &p.Description, nil, ""},
			{"license", &p.License, oneLine, "one line of text"},
			{"homepage", &p.Homepage, oneLine, "one line of text"},
			{"section", &p.Section, debField, "lower-case letters, digits and '+', '-', '.', '/'"},
			{"priority", &p.Priority, debField, "lower-case letters, digits and '+', '-', '.', '/'"},
		}
		for _, f := range fields {
			a := content.Attributes[f.name]
			v, set, ok := l.evalString(a)
			if !ok || !set {
				continue
			}
			if f.re != nil && !f.re.MatchString(v) {
				l.errorf(a.Expr.Range().Ptr(), "Invalid package "+f.name, "The package %s %q is not %s.", f.name, v, f.want)
				continue
			}
			*f.to = v
		}
		for _, f := range []struct {
			name string
			to   *string
		}{
			{"preinst", &p.Scripts.Preinst}, {"postinst", &p.Scripts.Postinst},
			{"prerm", &p.Scripts.Prerm}, {"postrm", &p.Scripts.Postrm},
		} {
			l.packageScript(content.Attributes[f.name], f.to)
		}
		e.Package = p
		for _, f := range fields {
			if why, ok := block.Recommended[f.name]; ok && *f.to == "" {
				l.warnf(b.DefRange.Ptr(), "Package without a "+f.name, "%s", why)
			}
		}
	}
	if block.Required && len(blocks) == 0 {
		l.errorf(d.block.DefRange.Ptr(), "Missing package block", "The export %q has format %q, which needs a package block with at least a version.", e.Name, e.Format)
	}
}

// packageScript decodes the maintainer script a (none when nil) into to:
// text with commands besides its #! line, which, when it has one, names
// an absolute interpreter, and which is added when missing (the host's
// /bin/sh, since dpkg and rpm run the script on the host, outside the
// closure). A NUL byte is refused: rpm keeps scripts as C strings.
func (l *loader) packageScript(a *hcl.Attribute, to *string) {
	v, set, ok := l.evalString(a)
	if !ok || !set {
		return
	}
	r := a.Expr.Range().Ptr()
	interp, body, has := plan.SplitInterpreter(v)
	switch {
	case strings.TrimSpace(body) == "":
		l.errorf(r, "Empty package script", "The package's %s has no commands: give it some, or remove it.", a.Name)
	case strings.ContainsRune(v, 0):
		l.errorf(r, "Invalid package script", "The package's %s holds a NUL byte; scripts are text.", a.Name)
	case has && !path.IsAbs(interp[0]):
		l.errorf(r, "Invalid package script", "The #! line of the package's %s names %q, which is not an absolute path.", a.Name, interp[0])
	case has:
		*to = v
	default:
		*to = "#!" + plan.DefaultInterpreter + "\n" + v
	}
}

// profile decodes `profile = true` and the profile block, which every
// format takes: a block alone asks for a profile too.
func (l *loader) profile(d *exportDecl, attr *hcl.Attribute, blocks hcl.Blocks) {
	e := &d.e
	on, set := false, false
	if attr != nil {
		if v, ok := l.evalAs(attr, cty.Bool); ok && !v.IsNull() {
			on, set = v.True(), true
		}
	}
	var p Profile
	for i, b := range blocks {
		if i > 0 {
			l.errorf(b.DefRange.Ptr(), "Duplicate profile block", "The export %q already has a profile block at %s.", e.Name, pos(blocks[0].DefRange))
			continue
		}
		if set && !on {
			l.errorf(b.DefRange.Ptr(), "Profile block without a profile", "The export %q has profile = false and a profile block: remove one.", e.Name)
		}
		content, diags := b.Body.Content(profileSchema)
		l.diags = append(l.diags, diags...)
		if a := content.Attributes["allow_collisions"]; a != nil {
			if v, ok := l.evalAs(a, cty.Bool); ok && !v.IsNull() {
				p.AllowCollisions = v.True()
			}
		}
		on = on || !set
	}
	if on {
		e.Profile = &p
	}
}

// The package metadata's syntax: names and versions as both dpkg and rpm
// take them (Debian policy 5.6.1 and 5.6.12, without '-' and ':' in
// versions, which rpm refuses).
var (
	packageName    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	packageVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~_]*$`)
	oneLine        = regexp.MustCompile(`^[^\n]*$`)
	debField       = regexp.MustCompile(`^[a-z0-9][a-z0-9+./-]*$`)
)

// defaultCreated is SOURCE_DATE_EPOCH as an RFC 3339 time when set, else
// DefaultCreated. A bad SOURCE_DATE_EPOCH is reported once.
func (l *loader) defaultCreated() string {
	v, ok := l.env("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return DefaultCreated
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		if !l.badEpoch {
			l.badEpoch = true
			l.errorf(nil, "Invalid SOURCE_DATE_EPOCH", "SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970.", v)
		}
		return ""
	}
	return time.Unix(n, 0).UTC().Format(time.RFC3339)
}

// stringList evaluates a as a list of strings. set is false when a is
// nil or null, or on errors; ok is false on errors, reported here or
// earlier (a value unknown because of them).
func (l *loader) stringList(a *hcl.Attribute) (list []string, set, ok bool) {
	if a == nil {
		return nil, false, true
	}
	v, ok := l.evalAs(a, stringList)
	if !ok || v.IsNull() {
		return nil, false, ok
	}
	out := []string{}
	for i, ev := range v.AsValueSlice() {
		if ev.IsNull() {
			l.errorf(elemRange(a.Expr, i, v.LengthInt()), "Null element", "The element [%d] of %s is null.", i, a.Name)
			ok = false
			continue
		}
		out = append(out, ev.AsString())
	}
	return out, true, ok
}

// stringMap evaluates a as a map of strings, checking each entry with
// check (which returns a message, or "", and reporting one with summary);
// nil when a is nil, null or wrong.
func (l *loader) stringMap(a *hcl.Attribute, summary string, check func(k, v string) string) map[string]string {
	if a == nil {
		return nil
	}
	v, ok := l.evalAs(a, stringMap)
	if !ok || v.IsNull() {
		return nil
	}
	out := map[string]string{}
	for k, ev := range v.AsValueMap() {
		if ev.IsNull() {
			l.errorf(l.keyRange(a.Expr, k), "Null element", "The element %q of %s is null.", k, a.Name)
			continue
		}
		if msg := check(k, ev.AsString()); msg != "" {
			l.errorf(l.keyRange(a.Expr, k), summary, "%s.", upperFirst(msg))
			continue
		}
		out[k] = ev.AsString()
	}
	return out
}

// entrypoint evaluates an entrypoint attribute, checking that a first
// element in the store folder names something that exists.
func (l *loader) entrypoint(a *hcl.Attribute) ([]string, bool) {
	ep, set, _ := l.stringList(a)
	if set && len(ep) > 0 {
		if msg := l.checkInside(ep[0]); msg != "" {
			l.errorf(elemRange(a.Expr, 0, len(ep)), "Invalid entrypoint", "%s.", upperFirst(msg))
		} else if msg := l.checkFile(ep[0]); msg != "" {
			l.errorf(elemRange(a.Expr, 0, len(ep)), "Invalid entrypoint", "%s.", upperFirst(msg))
		}
	}
	return ep, set
}

// storePaths evaluates a paths attribute: a list of store items. set is
// false when a is nil or null; ok is false when anything was wrong.
func (l *loader) storePaths(a *hcl.Attribute) (paths []store.Path, set, ok bool) {
	if a == nil {
		return nil, false, true
	}
	before := len(l.diags.Errs())
	list, set, ok := l.stringList(a)
	if !set {
		return nil, false, ok
	}
	if !l.store.ok {
		return nil, true, false // the store block has errors
	}
	out := []store.Path{}
	for i, p := range list {
		item, summary, detail := l.checkItem(p)
		if summary != "" {
			l.errorf(elemRange(a.Expr, i, len(list)), summary, "%s.", detail)
			continue
		}
		out = append(out, item)
	}
	return out, true, len(l.diags.Errs()) == before
}

// checkItem checks that p is a store item (not a path inside one) in the
// store folder, on disk or from a source block. On failure it returns a
// diagnostic's summary and detail.
func (l *loader) checkItem(p string) (item store.Path, summary, detail string) {
	dir := l.store.value.Dir
	item, rest, err := dir.ParseInside(p)
	switch {
	case err != nil && !strings.HasPrefix(p, string(dir)+"/"):
		return "", "Path outside the store", fmt.Sprintf("%s is not in the store folder %s (store.dir)", p, dir)
	case err != nil:
		return "", "Invalid store path", err.Error()
	case rest != "":
		return "", "Not a store item", fmt.Sprintf("paths lists whole store items, and %s is inside the item %s: list the item (its whole closure is exported)", p, item)
	}
	if !l.itemExists(item) {
		return "", "Store path not found", fmt.Sprintf("%s is not in the store folder %s, nor the store path of a source block", item, dir)
	}
	return item, "", ""
}

// checkInside checks a path that may be inside a store item (an entry
// point, a symlink's target): when it is in the store folder, its item
// must be valid and exist. It returns a message, or "".
func (l *loader) checkInside(p string) string {
	if !l.store.ok {
		return ""
	}
	dir := l.store.value.Dir
	if !strings.HasPrefix(p, string(dir)+"/") {
		return ""
	}
	item, _, err := dir.ParseInside(p)
	if err != nil {
		return err.Error()
	}
	if !l.itemExists(item) {
		return fmt.Sprintf("%s is not in the store folder %s, nor the store path of a source block", item, dir)
	}
	return ""
}

// checkFile checks that p, when in an existing store item, exists (an
// item to come from a substituter is not checked).
func (l *loader) checkFile(p string) string {
	if !l.store.ok {
		return ""
	}
	dir := l.store.value.Dir
	item, rest, err := dir.ParseInside(p)
	if err != nil || rest == "" {
		return ""
	}
	fsPath := l.store.value.Root + string(item)
	for _, s := range l.sources {
		if s.ok && s.value.StorePath == item {
			fsPath = s.value.Path
		}
	}
	if _, err := os.Lstat(fsPath); err != nil && len(l.store.value.Substituters) > 0 {
		return "" // a substituted item, not here to check
	}
	if _, err := os.Lstat(fsPath + rest); err != nil {
		return fmt.Sprintf("%s has no %s", item, strings.TrimPrefix(rest, "/"))
	}
	return ""
}

// itemExists reports whether item is in the store folder or is a
// source's store path.
func (l *loader) itemExists(item store.Path) bool {
	for _, s := range l.sources {
		if s.ok && s.value.StorePath == item {
			return true
		}
	}
	if len(l.store.value.Substituters) > 0 {
		return true // the substituters may have it: planning finds out
	}
	_, err := os.Lstat(l.store.value.Root + string(item))
	return err == nil
}

// elemRange is the range of element i of a list expression when it is
// written as a tuple [a, b, ...] of n elements, else the whole expression.
func elemRange(expr hcl.Expression, i, n int) *hcl.Range {
	if t, ok := expr.(*hclsyntax.TupleConsExpr); ok && len(t.Exprs) == n {
		return t.Exprs[i].Range().Ptr()
	}
	return expr.Range().Ptr()
}

// keyRange is the range of the item with key k of a map expression
// written as { k = v, ... }, else the whole expression.
func (l *loader) keyRange(expr hcl.Expression, k string) *hcl.Range {
	if o, ok := expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, it := range o.Items {
			kv, diags := it.KeyExpr.Value(l.ctx())
			if diags.HasErrors() || !kv.IsKnown() || kv.IsNull() {
				continue
			}
			if ks, err := convertValue(kv, cty.String); err == nil && ks.AsString() == k {
				rng := hcl.RangeBetween(it.KeyExpr.Range(), it.ValueExpr.Range())
				return &rng
			}
		}
	}
	return expr.Range().Ptr()
}

func quoteList[S ~string](xs []S) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(string(x))
	}
	return strings.Join(q, ", ")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
