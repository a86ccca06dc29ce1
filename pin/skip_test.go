package pin

import "testing"

// TestHasPrefix: skip prefixes match the reference as written and normalised, on path boundaries.
func TestHasPrefix(t *testing.T) {
	tests := []struct {
		image, prefix string
		want          bool
	}{
		{"nginx:1.27", "nginx", true},
		{"nginx", "nginx", true},
		{"nginx/exporter:1", "nginx", true},
		{"nginx@sha256:" + "0000000000000000000000000000000000000000000000000000000000000000", "nginx", true},
		{"nginx-ingress/controller:1", "nginx", false},
		{"nginx:1.27", "docker.io/", true},
		{"nginx:1.27", "docker.io/library/nginx", true},
		{"nginx:1.27", "index.docker.io/library/", true},
		{"docker.io/library/nginx:1.27", "nginx", false}, // the prefix names what is written; docker.io/library/nginx matches this
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx", true},
		{"bitnami/redis:7", "docker.io/bitnami/", true},
		{"quay.io/prometheus/node-exporter:v1", "docker.io/", false},
		{"registry.internal.example/team/app:1", "registry.internal.example", true},
		{"registry.internal.example/team/app:1", "registry.internal.example/", true},
		{"registry.internal.example.evil/app:1", "registry.internal.example", false},
		{"localhost:5000/app:1", "localhost:5000/", true},
		{"localhost:5000/app:1", "localhost:5000", true},
		{"localhost:50001/app:1", "localhost:5000", false},
		{"gcr.io/project/app:1", "gcr.io/proj", false},
		{"nginx:1.27", "nginx:1.27", true},
		{"nginx:1.27.1", "nginx:1.27", false},
		{"${IMAGE}", "${IMAGE}", true},
	}
	for _, tt := range tests {
		if got := hasPrefix(tt.image, []string{tt.prefix}); got != tt.want {
			t.Errorf("hasPrefix(%q, %q) = %v, want %v", tt.image, tt.prefix, got, tt.want)
		}
	}
}
