package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aspstate/aspstate/servers/target"
	"github.com/aspstate/aspstate/trace"
)

// checkTraceDiff checks the arguments of trace diff and parses its target.
func checkTraceDiff(files []string, tgt string, speed float64, examples int) (target.Spec, error) {
	switch {
	case len(files) == 0:
		return target.Spec{}, errors.New("give the capture files to replay (e.g. farm.pcap)")
	case tgt == "":
		return target.Spec{}, errors.New("give the server to replay against with --target (e.g. --target tcp://127.0.0.1:42424)")
	case speed <= 0:
		return target.Spec{}, fmt.Errorf("--speed %g: want a positive factor (1 = the recorded pace, 2 = twice as fast)", speed)
	case examples < 1:
		return target.Spec{}, fmt.Errorf("--examples %d: want at least 1", examples)
	}
	spec, err := target.Parse(tgt)
	if err != nil {
		return spec, fmt.Errorf("--target: %v", err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return spec, fmt.Errorf("%s: %v", f, errors.Unwrap(err))
		}
	}
	return spec, nil
}

// runTraceDiff implements `aspstate trace diff`.
func runTraceDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("trace diff", "[flags] FILE... --target T",
		"Replay each recorded connection's requests in their order and timing against a target (one live\n"+
			"connection per recorded one; fresh session ids; lock cookies mapped between recorded and live;\n"+
			"sessions that existed before the capture created first) and compare every reply with the\n"+
			"recorded one, after normalising what must differ (LockDate, LockAge, cookie values, the\n"+
			"X-AspNet-Version digits after the major). Differences are grouped by kind with wire transcripts;\n"+
			"bodies are compared, never printed. A 423 the replay's own timing explains does not fail.\n"+
			"Exit 0 no unexplained difference, 1 differences (or the replay stopped), 2 usage or an unreadable file.", stderr)
	cf := addCaptureFlags(fs)
	tgt := fs.String("target", "", "the server to replay against: "+target.Syntax)
	out := fs.String("out", "", "write diff.json, diff.xml (JUnit) and diff.html to this `DIR`")
	speed := fs.Float64("speed", 1, "replay this many times faster than recorded")
	examples := fs.Int("examples", 3, "wire transcripts kept per group of differences")
	if done, code := parseFlags(fs, flagsFirst(fs, args), true); done {
		return code
	}
	files := fs.Args()
	opt, err := cf.options()
	if err != nil {
		return usageError(stderr, "trace diff", "%v", err)
	}
	spec, err := checkTraceDiff(files, *tgt, *speed, *examples)
	if err != nil {
		return usageError(stderr, "trace diff", "%v", err)
	}
	live, err := target.Start(ctx, spec, target.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "aspstate trace diff: %v\n", err)
		return 1
	}
	defer live.Close()
	rep, err := trace.Diff(ctx, files, trace.DiffOptions{Target: live.Addr(), Read: opt, Speed: *speed, Examples: *examples})
	if err != nil {
		fmt.Fprintf(stderr, "aspstate trace diff: %v\n", err)
		if fe := (*trace.FileError)(nil); errors.As(err, &fe) {
			return 2 // an unreadable file
		}
		return 1
	}
	if rep.Exch == 0 {
		fmt.Fprintf(stderr, "aspstate trace diff: %s: %s\n", strings.Join(files, ", "), noExchangeReason(rep.Capture, opt.Port))
		return 1
	}
	rep.Target = live.Info().Spec
	rep.WriteText(stdout)
	if *out != "" {
		if err := writeDiffFiles(*out, rep); err != nil {
			fmt.Fprintf(stderr, "aspstate trace diff: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, "diff.{json,xml,html}"))
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// writeDiffFiles writes the report as JSON, JUnit XML and HTML into dir.
func writeDiffFiles(dir string, rep *trace.DiffReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, write := range map[string]func(io.Writer) error{
		"diff.json": rep.WriteJSON, "diff.xml": rep.WriteJUnit, "diff.html": rep.WriteHTML,
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
