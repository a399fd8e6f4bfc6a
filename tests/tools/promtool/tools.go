//go:build tools

// Package tools pins Prometheus' promtool (cmd/promtool of the prometheus
// module), which the tests use to unit-test and check the alerting rules in
// config/prometheus and to lint the operator's /metrics exposition.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
