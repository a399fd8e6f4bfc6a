//go:build tools

// Package tools pins Jaeger v2 (cmd/jaeger of the jaeger module): the tracing
// test (tests/tracing_e2e.rs) runs it as the OTLP receiver and reads the
// operator's and Maestro's spans back through its query API.
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
)
