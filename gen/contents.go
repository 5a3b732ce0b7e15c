package gen

import (
	"fmt"
	"strings"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// The account files a tree gets with its accounts.
const (
	PasswdPath = "/etc/passwd"
	GroupPath  = "/etc/group"
)

// contentEntries are the entries of e's account and file blocks:
// /etc/passwd and /etc/group (root, nobody and the accounts, in spec
// order) when the export has accounts or its user is a name (without a
// base, whose own files then stay; with accounts they replace them), each
// account's home folder owned by it, and the files with their modes and
// owners. A file block at /etc/passwd or /etc/group replaces the
// generated one. Folders above them are made by treeEntries.
func contentEntries(e *spec.Export, storeDir store.Dir) ([]plan.Entry, error) {
	var out []plan.Entry
	files := map[string]bool{}
	for _, f := range e.Files {
		if f.Path == string(storeDir) || strings.HasPrefix(f.Path, string(storeDir)+"/") {
			return nil, fmt.Errorf("file %s: inside the store folder %s", f.Path, storeDir)
		}
		files[f.Path] = true
		out = append(out, plan.Entry{Path: f.Path, Type: plan.EntryFile, Mode: plan.Mode(f.Mode), Content: f.Content, UID: f.UID, GID: f.GID})
	}
	user, _, _ := strings.Cut(e.Image.User, ":")
	named := user != "" && strings.Trim(user, "0123456789") != "" && e.Image.Base == ""
	if len(e.Accounts) == 0 && !named {
		return out, nil // a base keeps its own /etc/passwd
	}
	var passwd, group strings.Builder
	passwd.WriteString("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/var/empty:/bin/sh\n")
	group.WriteString("root:x:0:\nnobody:x:65534:\n")
	groups := map[int]bool{0: true, 65534: true}
	for _, a := range e.Accounts {
		fmt.Fprintf(&passwd, "%s:x:%d:%d::%s:/bin/sh\n", a.Name, a.UID, a.GID, a.Home)
		if !groups[a.GID] {
			groups[a.GID] = true
			fmt.Fprintf(&group, "%s:x:%d:\n", a.Name, a.GID)
		}
		if a.Home == string(storeDir) || strings.HasPrefix(a.Home, string(storeDir)+"/") {
			return nil, fmt.Errorf("account %s: home %s inside the store folder %s", a.Name, a.Home, storeDir)
		}
		out = append(out, plan.Entry{Path: a.Home, Type: plan.EntryDirectory, Mode: 0o755, UID: a.UID, GID: a.GID})
	}
	for _, f := range []struct{ path, content string }{{PasswdPath, passwd.String()}, {GroupPath, group.String()}} {
		if !files[f.path] {
			out = append(out, plan.Entry{Path: f.path, Type: plan.EntryFile, Mode: 0o644, Content: f.content})
		}
	}
	return out, nil
}
