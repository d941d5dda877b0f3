package main

import (
	"context"
	"fmt"
	"io"
)

// runConform is a placeholder that the conform work replaces.
func runConform(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "aspstate conform: not built yet")
	return 2
}
