package conformance

import (
	"strings"
	"testing"
	"time"
)

func TestJudgeMinute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		held   time.Duration
		age    int64
		minute time.Duration
		want   string // "" = agree
	}{
		{4 * time.Second, 4, time.Minute, ""},
		{4100 * time.Millisecond, 3, time.Minute, ""},
		{4 * time.Second, 400, time.Minute, "about 600ms, not 1m0s"},
		{1500 * time.Millisecond, 0, 600 * time.Millisecond, "longer than 1.2s"},
		{1500 * time.Millisecond, 1, 600 * time.Millisecond, "about 1m30s, not 600ms"},
		{1500 * time.Millisecond, 150, 600 * time.Millisecond, ""},
		{1500 * time.Millisecond, 15, 600 * time.Millisecond, "about 6s, not 600ms"},
	} {
		got := judgeMinute(tc.held, tc.age, tc.minute)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("judgeMinute(%v, %d, %v) = %q, want %q", tc.held, tc.age, tc.minute, got, tc.want)
		}
	}
}
