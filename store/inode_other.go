//go:build !unix

package store

import "io/fs"

// inode is 0: file identity is judged by size and modification time alone.
func inode(fs.FileInfo) uint64 { return 0 }
