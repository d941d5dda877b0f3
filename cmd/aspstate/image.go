package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/aspstate/aspstate/servers/target"
)

// imageOptions are the flags of aspstate image.
type imageOptions struct {
	binary, tag string
	verbose     bool
}

func newImageCmd() *cobra.Command {
	o := &imageOptions{}
	c := &cobra.Command{
		Use:   "image [flags]",
		Short: "build the reference server container image (FROM scratch)",
		Long: "Build the reference state server image (FROM scratch + this static aspstate binary)\n" +
			"and tag it " + target.ReferenceImage + ":latest and " + target.ReferenceImage + ":<hash>. An unchanged\n" +
			"binary reuses the image already built. `--target docker:reference` does this by itself.",
		Example: `  # build it from this (static) binary, then run it
  aspstate image
  docker run --rm -p 127.0.0.1:42424:42424 aspstate-reference:latest`,
		Args: noArgs,
	}
	c.RunE = action(o.run)
	fs := commandFlags(c)
	fs.StringVar(&o.binary, "binary", "", "static aspstate binary to package (default: this executable)")
	fs.StringVar(&o.tag, "tag", "", "extra tag to give the image, e.g. myregistry/aspstate:1.0")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "show the docker build output")
	return c
}

// run implements aspstate image.
func (o *imageOptions) run(ctx context.Context, c *cobra.Command, _ []string) int {
	stdout, stderr := c.OutOrStdout(), c.ErrOrStderr()
	if err := target.DockerAvailable(ctx); err != nil {
		fmt.Fprintf(stderr, "aspstate image: %v\n", err)
		return 2
	}
	var log io.Writer
	if o.verbose {
		log = stderr
	}
	built, err := target.BuildReferenceImage(ctx, o.binary, log)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "built %s (also %s:latest)\n", built, target.ReferenceImage)
	if o.tag != "" {
		if out, err := exec.CommandContext(ctx, "docker", "tag", built, o.tag).CombinedOutput(); err != nil {
			fmt.Fprintf(stderr, "aspstate image: docker tag %s: %v\n%s", o.tag, err, out)
			return 1
		}
		fmt.Fprintf(stdout, "tagged %s\n", o.tag)
	}
	fmt.Fprintf(stdout, "run it: docker run --rm -p 127.0.0.1:%d:%d %s:latest\n", target.ContainerPort, target.ContainerPort, target.ReferenceImage)
	return 0
}
