package stateserver

import (
	"bytes"
	"os"
	"testing"
)

func TestGoldenCaptures(t *testing.T) {
	s := startServer(t, Config{})
	c := dial(t, s)
	ctx := tctx(t)
	for _, name := range []string{"net4-put-release", "net4-get-acquire"} {
		req, err := os.ReadFile("../../protocol/testdata/captures/" + name + ".request")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile("../../protocol/testdata/captures/" + name + ".response")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.DoRaw(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := resp.Bytes(); !bytes.Equal(got, want) {
			t.Errorf("%s reply:\n got %q\nwant %q", name, got, want)
		}
	}
}
