//go:build tools

// Package tools pins the helm command tests/stack/kube.sh builds, so that
// `go mod tidy` keeps its dependencies in go.mod and go.sum. Never compiled.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
