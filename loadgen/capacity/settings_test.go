package capacity

import (
	"strings"
	"testing"
	"time"
)

func validSettings() Settings {
	return Settings{Step: 10 * time.Second, Warmup: DefaultWarmup, LateThreshold: 10 * time.Millisecond,
		MaxLate: DefaultMaxLate, Factor: 2, Tolerance: 0.05, MaxSteps: 20, MaxTime: 4 * time.Minute,
		MaxRate: 200000, OverheadBytes: DefaultOverheadBytes, Workers: 1024}
}

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	if err := validSettings().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		change func(*Settings)
		want   string
	}{
		{func(s *Settings) { s.Step = 100 * time.Millisecond }, "Step 100ms: want at least 1s"},
		{func(s *Settings) { s.Warmup = -time.Second }, "Warmup"},
		{func(s *Settings) { s.MaxTime = 3 * time.Second }, "MaxTime 3s"},
		{func(s *Settings) { s.Start = -1 }, "Start -1"},
		{func(s *Settings) { s.MaxRate = 0 }, "MaxRate 0"},
		{func(s *Settings) { s.Start = 500; s.MaxRate = 100 }, "Start 500 is above MaxRate 100"},
		{func(s *Settings) { s.MaxLate = 1 }, "MaxLate 1"},
		{func(s *Settings) { s.LateThreshold = 0 }, "LateThreshold"},
		{func(s *Settings) { s.Minute = time.Millisecond }, "Minute 1ms"},
		{func(s *Settings) { s.OverheadBytes = -1 }, "OverheadBytes"},
		{func(s *Settings) { s.Factor = 1 }, "Factor 1"},
		{func(s *Settings) { s.Tolerance = 0 }, "Tolerance 0"},
		{func(s *Settings) { s.MaxSteps = 0 }, "MaxSteps 0"},
	} {
		s := validSettings()
		tc.change(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %q, got %v", tc.want, err)
		}
	}
	s := validSettings()
	s.Step, s.MaxSteps = 0, 0
	if n := strings.Count(s.Validate().Error(), "\n"); n != 1 {
		t.Errorf("want both problems at once, got %d lines", n+1)
	}
}
