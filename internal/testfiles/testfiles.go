// Package testfiles writes and reads the trees of small files that end-to-end tests give a client
// (a kpt package, a kustomization) and compare after it ran.
package testfiles

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Write writes files (relative path → content) under dir, creating folders as needed.
func Write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Read returns every regular file under dir by relative path (symbolic links, such as one to a
// binary, are left out).
func Read(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
