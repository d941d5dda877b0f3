package scenarios_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/aspstate/aspstate/scenarios"
)

// List the builtin scenarios, as `aspstate load --list` does.
func ExampleBuiltin() {
	for _, info := range scenarios.Builtin() {
		fmt.Println(info.Name)
	}
	// Output:
	// ajax-heavy
	// ecommerce-peak
	// large-sessions
	// read-mostly-portal
	// recycle-storm
	// small-intranet
}

// Parse a scenario file; omitted fields get their defaults.
func ExampleParse() {
	s, err := scenarios.Parse([]byte(`
name: checkout
description: Checkout pages only
users:
  think_time: {dist: uniform, min: 1s, max: 3s}
pages:
  mix: {modify: 1}
rate: {shape: ramp, from: 50, to: 150}
`), "checkout.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Duration, s.Client.SessionTimeout, s.Farm.Apps[0].ID)
	fmt.Println(s.PagesPerSecondAt(0), s.PagesPerSecondAt(s.Duration.D()/2), s.ExpectedPages())
	fmt.Println(s.Users.ThinkTime.MeanDuration())
	// Output:
	// 30s 20 /LM/W3SVC/1/ROOT
	// 50 100 3000
	// 2s
}

// Every problem is reported at once, with file, line, field path and fix.
func ExampleParse_errors() {
	_, err := scenarios.Parse([]byte(`
name: broken
description: Two mistakes
users:
  think_time: {dist: exponential}
client:
  session_timeout: 600000
`), "broken.yaml")
	fmt.Println(err)
	// Output:
	// broken.yaml:5: users.think_time.mean: required for exponential, must be > 0 (e.g. "5s")
	// broken.yaml:7: client.session_timeout: 600000: must be 1..525600 minutes (e.g. 20)
}

// Sample a distribution with a seeded generator, as the load generator does.
func ExampleDist() {
	think := scenarios.Dist{Kind: scenarios.DistUniform, Min: 1, Max: 3}
	r := rand.New(rand.NewPCG(1, 1))
	d := think.SampleDuration(r)
	fmt.Println(d >= 1e9 && d <= 3e9, think.Mean(), think.MeanDuration())
	// Output:
	// true 2 2s
}
