package main

import (
	"context"
	"fmt"
	"io"
)

// runServe is a placeholder that the serve work replaces.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "aspstate serve: not built yet")
	return 2
}
