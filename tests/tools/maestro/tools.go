//go:build tools

// Package tools pins the real Maestro server and agent (cmd/maestro) and
// Maestro's own ManifestWork example client (examples/manifestwork), which
// the integration tests use as the reference Go grpcsource client.
package tools

import (
	_ "github.com/openshift-online/maestro/cmd/maestro"
	_ "github.com/openshift-online/maestro/examples/manifestwork"
)
