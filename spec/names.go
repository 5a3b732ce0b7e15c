package spec

import "regexp"

// exportName is the grammar of export names.
var exportName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
