// rulecheck validates Prometheus rule files as `promtool check rules` does (the same rulefmt parser of the same
// Prometheus release: strict YAML fields, PromQL expressions, label and annotation templates), without building
// promtool, whose service-discovery dependencies take many minutes to compile.
//
// Usage: rulecheck FILE...; prints one line per file, the errors on stderr, exit status 1 when any file fails.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rulecheck FILE...")
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	failed := false
	for _, file := range os.Args[1:] {
		groups, errs := rulefmt.ParseFile(file, false, model.UTF8Validation, parser.NewParser(parser.Options{}), logger)
		if len(errs) > 0 {
			failed = true
			for _, err := range errs {
				fmt.Fprintln(os.Stderr, err)
			}
			fmt.Printf("%s: FAILED\n", file)
			continue
		}
		rules := 0
		for _, group := range groups.Groups {
			rules += len(group.Rules)
		}
		fmt.Printf("%s: %d rules valid\n", file, rules)
	}
	if failed {
		os.Exit(1)
	}
}
