package cli

import (
	"os"
	"path/filepath"
	"strings"
)

// A Helm chart is a directory with a Chart.yaml. Its values*.yaml files hold the images the chart
// deploys, often split into repository, tag and digest: they are read as values files (see
// pin.Object.Values). Its templates/ are Go templates, which are no YAML until Helm renders them:
// they are neither read nor edited.

// isChart reports whether dir holds a Chart.yaml.
func isChart(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, "Chart.yaml"))
	return err == nil && fi.Mode().IsRegular()
}

// chartTemplate reports whether rel, a file under root, is in the templates/ directory of a chart.
func chartTemplate(root, rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts[:len(parts)-1] {
		if p == "templates" && isChart(filepath.Join(root, filepath.Join(parts[:i]...))) {
			return true
		}
	}
	return false
}

// markValues marks the objects of f as those of a values file when f is a chart's values*.yaml.
func markValues(f *file) {
	base := filepath.Base(f.path)
	ext := filepath.Ext(base)
	if !strings.HasPrefix(base, "values") || ext != ".yaml" && ext != ".yml" || !isChart(filepath.Dir(f.path)) {
		return
	}
	for _, o := range f.objs {
		o.Values = true
	}
}
