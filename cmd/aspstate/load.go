package main

import (
	"context"
	"fmt"
	"io"
)

// runLoad is a placeholder that the load work replaces.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "aspstate load: not built yet")
	return 2
}
