package conformance

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// protocolCases are the 70 conformance cases of PROTOCOL.md (h), ids as given there.
var protocolCases = strings.Fields(`2.1-keepalive 2.1-idle-close 2.2.2.4-roundtrip-binary 2.2.2.4-empty-body-put
2.2.3.4-version-header 2.2.3.5-timeout-default 2.2.3.5-timeout-echo 2.2.3.5-timeout-max 2.2.3.5-timeout-negative
2.2.3.5-timeout-nonnumeric 2.2.3.5-timeout-zero 2.2.3.6-acquire-lowercase 2.2.3.6-acquire-case 2.2.3.9-first-cookie
2.2.3.9-cookie-increments 2.2.3.11-nospace-headers 2.2.3.11-uninit-create 2.2.3.12-actionflags-once 2.2.3.12-never-zero
2.2.3.13-key-decoding 2.2.3.13-key-case 2.2.3.13-double-slash 2.2.4-status-line 2.2.4-header-order 2.2.4.3-get-missing
2.2.4.4-locked-headers 2.2.3.8-lockdate-ticks 2.2.3.10-lockage-grows 3.1.5.1-get-locked 3.1.5.1-get-unlocked
3.1.5.2-acquire-locked 3.1.5.2-acquire-missing 3.1.5.3-put-locked-nocookie 3.1.5.3-put-locked-wrongcookie
3.1.5.3-put-owner-releases 3.1.5.3-put-unlocked-anycookie 3.1.5.3-uninit-noop-existing 3.1.5.3-uninit-noop-locked
3.1.5.3-new-ignores-cookie 3.1.5.3-timeout-change-resets-counter 3.1.5.3-badcookie-existing 3.1.5.4-release-ok
3.1.5.4-release-wrong 3.1.5.4-release-missing-cookie 3.1.5.4-release-unlocked 3.1.5.4-release-absent
3.1.5.4-force-release 3.1.5.5-delete-owner 3.1.5.5-delete-wrong 3.1.5.5-delete-unlocked-nocookie
3.1.5.5-delete-absent 3.1.5.6-head-ok 3.1.5.6-head-ignores-lock 3.1.5.6-head-extends 3.1.5.3-expiry
3.1.5.3-get-extends 3.1.5.1-423-extends 3.1.5.1-concurrency 3.1.5.1-badrequest-verb 2.2.5.1-no-leading-slash
2.2.5.1-leading-slash 2.2.5.2-no-error-bodies 2.2.2.3-content-length-split CLIENT-e.4-version CLIENT-b.3-uri
CLIENT-b.4-put-format CLIENT-e.2-poll CLIENT-e.5-empty-200 ops-loopback-default ops-restart-loses-state`)

func TestCatalogueCoversProtocolCases(t *testing.T) {
	if len(protocolCases) != 70 {
		t.Fatalf("the list of PROTOCOL.md (h) cases has %d entries, want 70", len(protocolCases))
	}
	for _, id := range protocolCases {
		r, ok := ruleByID(id)
		if !ok {
			t.Errorf("PROTOCOL.md (h) case %s has no rule", id)
			continue
		}
		if strings.HasPrefix(id, "CLIENT-") && r.Level != LevelClient {
			t.Errorf("%s is a client case but has level %s", id, r.Level)
		}
	}
}

func TestCatalogueCoversDecisionTables(t *testing.T) {
	rows := map[string]int{"c.1": 9, "c.2": 9, "c.3": 4, "c.4": 2, "c.5": 3}
	for table, n := range rows {
		for i := 1; i <= n; i++ {
			prefix := table + "-" + itoa(i) + "-"
			if !slices.ContainsFunc(catalogue, func(r RuleInfo) bool { return strings.HasPrefix(r.ID, prefix) }) {
				t.Errorf("decision table %s row %d has no rule (%s…)", table, i, prefix)
			}
		}
	}
}

func TestCatalogueWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range catalogue {
		if seen[r.ID] {
			t.Errorf("rule %s listed twice", r.ID)
		}
		seen[r.ID] = true
		if !slices.Contains(AllLevels, r.Level) {
			t.Errorf("rule %s: level %q", r.ID, r.Level)
		}
		if r.Description == "" || strings.Contains(r.Description, "\n") {
			t.Errorf("rule %s: description must be one line", r.ID)
		}
		if strings.ContainsAny(r.ID, "&|!,()/ ") {
			t.Errorf("rule %s: not usable in a Ginkgo label", r.ID)
		}
		if !strings.HasPrefix(r.ID, r.Section+"-") {
			t.Errorf("rule %s: section %q is not its prefix", r.ID, r.Section)
		}
	}
}

// TestMustRulesNameEvidence: a must rule is backed by a capture, the managed
// source, the spec or a KB article (PROTOCOL.md's tags), never by an
// inference or an unknown; UNK and INF behaviours are ref or advice.
func TestMustRulesNameEvidence(t *testing.T) {
	t.Parallel()
	strong := regexp.MustCompile(`\b(CAP|REF|SPEC|KB)\b`)
	weak := regexp.MustCompile(`\b(UNK|INF)\b`)
	for _, r := range catalogue {
		if r.Evidence == "" {
			t.Errorf("rule %s names no evidence", r.ID)
		}
		if r.Level != LevelMust {
			continue
		}
		if !strong.MatchString(r.Evidence) {
			t.Errorf("must rule %s: evidence %q names none of CAP, REF, SPEC, KB", r.ID, r.Evidence)
		}
		if weak.MatchString(r.Evidence) {
			t.Errorf("must rule %s: evidence %q is partly UNK/INF; make it ref or advice", r.ID, r.Evidence)
		}
	}
}

func TestRobustnessCorpusSize(t *testing.T) {
	if n := corpusSize(); n < 60 {
		t.Errorf("the malformed-request corpus has %d entries, want at least 60", n)
	}
	for _, id := range corpusRules {
		if len(corpus[id]) == 0 {
			t.Errorf("corpus rule %s has no entries", id)
		}
	}
	if len(corpus) != len(corpusRules) {
		t.Errorf("corpus has %d rules, corpusRules lists %d", len(corpus), len(corpusRules))
	}
}

func TestNormalizeAndMatch(t *testing.T) {
	for in, want := range map[string]string{
		"3.1.5.4/release-wrong":      "3.1.5.4-release-wrong",
		"rule:3.1.5.4-release-wrong": "3.1.5.4-release-wrong",
		" CLIENT-e.4/version ":       "CLIENT-e.4-version",
	} {
		if got := NormalizeID(in); got != want {
			t.Errorf("NormalizeID(%q) = %q, want %q", in, got, want)
		}
	}
	if got := MatchRules("3.1.5.4/*"); len(got) != 6 {
		t.Errorf("3.1.5.4/* matched %v, want the 6 release rules", got)
	}
	if got := MatchRules("2.2.3.?-*"); slices.ContainsFunc(got, func(id string) bool { return strings.HasPrefix(id, "2.2.3.1") }) {
		t.Errorf("? matched more than one character: %v", got)
	}
	if got := MatchRules("c.2-1-timeout-invalid"); len(got) != 1 {
		t.Errorf("exact id matched %v", got)
	}
	if got := MatchRules("2.2.3.9-first.cookie"); len(got) != 0 {
		t.Errorf("a dot in a glob is literal, matched %v", got)
	}
	sel := Config{Levels: []string{LevelClient}, Rules: []string{"3.1.5.4-*"}}.selector()
	if !sel("3.1.5.4-force-release", LevelClient) || sel("3.1.5.4-release-ok", LevelMust) || sel("CLIENT-e.4-version", LevelClient) {
		t.Error("selector does not intersect levels and globs")
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Minute: -1, Levels: []string{"x"}, Rules: []string{"nope*"}, LabelFilter: "((", Deviations: map[string]string{"9-x": "y"}}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"no target", "minute", `unknown level "x"`, `"nope*" matches no rule`, `label filter "(("`, `unknown rule "9-x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "\x1b[") || strings.Contains(err.Error(), "{{") {
		t.Errorf("Validate error has colour codes: %q", err)
	}
}
