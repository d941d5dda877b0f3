package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"

	"github.com/aspstate/aspstate/servers/target"
)

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("image", "[flags]",
		"Build the reference state server image (FROM scratch + this static aspstate binary)\n"+
			"and tag it "+target.ReferenceImage+":latest and "+target.ReferenceImage+":<hash>. An unchanged\n"+
			"binary reuses the image already built. `--target docker:reference` does this by itself.", stderr)
	binary := fs.String("binary", "", "static aspstate binary to package (default: this executable)")
	tag := fs.String("tag", "", "extra tag to give the image, e.g. myregistry/aspstate:1.0")
	verbose := fs.Bool("v", false, "show the docker build output")
	if done, code := parseFlags(fs, args, false); done {
		return code
	}
	if err := target.DockerAvailable(ctx); err != nil {
		fmt.Fprintf(stderr, "aspstate image: %v\n", err)
		return 2
	}
	var log io.Writer
	if *verbose {
		log = stderr
	}
	built, err := target.BuildReferenceImage(ctx, *binary, log)
	if err != nil {
		fmt.Fprintf(stderr, "aspstate image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "built %s (also %s:latest)\n", built, target.ReferenceImage)
	if *tag != "" {
		if out, err := exec.CommandContext(ctx, "docker", "tag", built, *tag).CombinedOutput(); err != nil {
			fmt.Fprintf(stderr, "aspstate image: docker tag %s: %v\n%s", *tag, err, out)
			return 1
		}
		fmt.Fprintf(stdout, "tagged %s\n", *tag)
	}
	fmt.Fprintf(stdout, "run it: docker run --rm -p 127.0.0.1:%d:%d %s:latest\n", target.ContainerPort, target.ContainerPort, target.ReferenceImage)
	return 0
}
